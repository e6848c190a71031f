"""The signing snippets in docs/signing.md produce vector 1 exactly (Python; Node.js where installed, and always
in CI, where ARKSERVE_REQUIRE_NODE=1 turns a missing ``node`` into a failure)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.required import unavailable
from tests.spec import vectors

DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"
VECTOR_1 = vectors()[0]


def _block(section: str, lang: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{lang}\n(.*?)```", body, re.DOTALL)
    assert match, f"no {lang} block under {section!r}"
    return match.group(1)


def test_doc_quotes_vector_1() -> None:
    text = DOC.read_text(encoding="utf-8")
    for needle in (
        VECTOR_1["headers"]["Authorization"],
        VECTOR_1["secret_key"],
        VECTOR_1["date"],
        json.dumps(VECTOR_1["string_to_sign"]),
    ):
        assert needle in text


def test_python_stdlib_snippet_reproduces_vector_1() -> None:
    namespace: dict[str, object] = {"__name__": "doc_snippet"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_block("Python without the SDK", "python"), str(DOC), "exec"), namespace)
    assert out.getvalue().strip() == repr(VECTOR_1["headers"])


def test_node_snippet_reproduces_vector_1() -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("ARKSERVE_REQUIRE_NODE", "node is not installed (apt-get install nodejs)")
    result = subprocess.run(
        [
            node,
            "-e",
            _block("JavaScript (Node.js `crypto`)", "js")
            .replace("console.log(", "console.log(JSON.stringify(", 1)
            .replace("}));", "})));", 1),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(result.stdout) == VECTOR_1["headers"]
