"""The optional compiled hot path (``arkserve/gateway/fast.py``): a stale or partial build never loads, a current one
does. Each case imports the gateway in a fresh interpreter from a copy of the package, so the running one is untouched.
CI runs the gateway tests twice: as Python, then once more after ``python -m arkserve.gateway.fastbuild build`` with
``ARKSERVE_REQUIRE_FAST=1`` (``.ci/run``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import arkserve
from arkserve.gateway import fast
from tests.required import unavailable

PKG = Path(arkserve.__file__).resolve().parent
_PROBE = ("import json, importlib; from arkserve.gateway import fast; "
          "print(json.dumps({'mode': fast.MODE, 'files': [importlib.import_module('arkserve.gateway.' + m).__file__ "
          "for m in fast.HOT]}))")


def _copy(tmp: Path, compiled: bool) -> Path:
    skip = ["__pycache__"] if compiled else ["__pycache__", "*.so", fast.MANIFEST]
    shutil.copytree(PKG, tmp / "arkserve", ignore=shutil.ignore_patterns(*skip))
    return tmp / "arkserve" / "gateway"


def _probe(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", _PROBE], cwd=root, env=env, capture_output=True, text=True,
                          timeout=60)


def _loaded(root: Path) -> tuple[str, list[str]]:
    p = _probe(root)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert all(f.startswith(str(root)) for f in out["files"]), out  # the copy, not the checkout
    return out["mode"], [Path(f).name for f in out["files"]]


def _fake_build(gw: Path) -> None:
    """What a build leaves, with files that are not loadable: importing one fails loudly."""
    for f in fast.compiled_files(gw):
        f.write_bytes(b"not a shared object")
    (gw / fast.MANIFEST).write_text(json.dumps({"sources": fast.source_hashes(gw)}))


def test_a_current_build_is_what_loads(tmp_path: Path) -> None:
    _fake_build(_copy(tmp_path, compiled=False))
    p = _probe(tmp_path)
    assert p.returncode != 0 and "ImportError" in p.stderr, p.stderr  # the guard trusted it: its files loaded


@pytest.mark.parametrize("damage", ["edited", "missing", "no manifest"])
def test_a_stale_or_partial_build_never_loads(tmp_path: Path, damage: str) -> None:
    gw = _copy(tmp_path, compiled=False)
    _fake_build(gw)
    if damage == "edited":  # a source changed after compiling: its old code must not run
        with (gw / "exchange.py").open("a") as f:
            f.write("\n# edited after the build\n")
    elif damage == "missing":
        (gw / f"relay{fast.SUFFIX}").unlink()
    else:
        (gw / fast.MANIFEST).unlink()
    mode, files = _loaded(tmp_path)
    assert files == [f"{m}.py" for m in fast.HOT]
    want = {"edited": "changed since the build: exchange.py", "missing": f"compiled files missing: relay{fast.SUFFIX}",
            "no manifest": f"no readable {fast.MANIFEST}"}[damage]
    assert mode == f"stale: {want}"


def test_no_build_is_the_pure_path(tmp_path: Path) -> None:
    _copy(tmp_path, compiled=False)
    assert _loaded(tmp_path) == ("pure", [f"{m}.py" for m in fast.HOT])


def test_the_compiled_build_runs_here_and_an_edit_turns_it_off(tmp_path: Path) -> None:
    if fast.state() != "compiled":
        unavailable("ARKSERVE_REQUIRE_FAST", f"no current compiled hot path here ({fast.state()}): "
                    "pip install -e '.[fast]' && python -m arkserve.gateway.fastbuild build")
    from arkserve.gateway import exchange, proxy, upstream

    assert fast.MODE == "compiled"
    assert [Path(m.__file__ or "").name for m in (exchange, proxy, upstream)] == \
        [f"{m}{fast.SUFFIX}" for m in ("exchange", "proxy", "upstream")]
    for cls in (proxy.ClientConnection, upstream.UpstreamConnection, exchange.Exchange):
        assert "__dict__" not in dir(cls), cls  # native classes: fixed attribute slots

    gw = _copy(tmp_path, compiled=True)
    assert _loaded(tmp_path) == ("compiled", [f"{m}{fast.SUFFIX}" for m in fast.HOT])
    with (gw / "proxy.py").open("a") as f:
        f.write("\n# edited after the build\n")
    assert _loaded(tmp_path) == ("stale: changed since the build: proxy.py", [f"{m}.py" for m in fast.HOT])
