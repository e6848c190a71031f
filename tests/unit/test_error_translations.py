"""Every error code arkserve can answer with has a Chinese text in the console (``lang-zh.js``), so that a new code
without a translation fails here rather than showing English in a Chinese console. The English console shows the
API's own message unless ``lang-en.js`` has a text of its own for the code.

The codes are read from the source with :mod:`ast`: ``code=...`` arguments (every branch of a conditional),
``code = ...`` in a class body (the error classes), ``{"code": ...}`` bodies, the status-to-code tables and the first
string argument of the functions that build an error answer directly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "arkserve"
STATIC = PACKAGE / "console" / "static"
CODE = re.compile(r"^[A-Z][A-Za-z]*[a-z][A-Za-z]*$")  # CamelCase; the registry protocol's DENIED etc. are not ours
BUILDERS = {"error_response", "HttpError", "api_error", "_registry_error"}


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _codes_in(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Call):
        found = [s for kw in node.keywords if kw.arg == "code" for s in _strings(kw.value)]
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in BUILDERS:
            found += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)][:1]
        return found
    if isinstance(node, ast.ClassDef):
        return [s for st in node.body if isinstance(st, ast.Assign | ast.AnnAssign) and st.value is not None
                for t in (st.targets if isinstance(st, ast.Assign) else [st.target])
                if isinstance(t, ast.Name) and t.id == "code" for s in _strings(st.value)]
    if isinstance(node, ast.Dict) and node.keys and all(isinstance(k, ast.Constant) for k in node.keys):
        pairs = [(k.value, v.value) for k, v in zip(node.keys, node.values, strict=True)  # type: ignore[union-attr]
                 if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        if any(k == "code" for k, _ in pairs):  # a JSON error body written out
            return [v for k, v in pairs if k == "code"]
        if len(pairs) == len(node.keys) and all(isinstance(k, int) for k, _ in pairs):  # status -> code
            return [v for _, v in pairs]
    return []


def raised_codes() -> dict[str, str]:
    """Each error code in arkserve's source -> one file that uses it."""
    codes: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for code in _codes_in(node):
                if CODE.match(code):
                    codes.setdefault(code, str(path.relative_to(ROOT)))
    return codes


def translated(lang: str) -> set[str]:
    text = (STATIC / f"lang-{lang}.js").read_text()
    return set(re.findall(r'^\s*"error\.([A-Za-z]+)":', text, re.MULTILINE))


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = raised_codes()
    # one of each way a code is written: keyword, conditional, class attribute, JSON body, status table, builder
    for code in ("PathExists", "AsyncRequestFailed", "InsufficientBalance", "RequestTimeout", "MethodNotAllowed",
                 "NoSuchService", "RegistryLoginFailed", "ValidationFailed"):
        assert code in codes, code
    assert len(codes) > 100


def test_every_error_code_has_a_chinese_text() -> None:
    codes = raised_codes()
    missing = {c: where for c, where in codes.items() if c not in translated("zh")}
    assert not missing, f"add error.<code> to lang-zh.js for: {missing}"
