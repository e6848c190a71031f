"""The optional compiled build of the gateway's hot path (mypyc), and the guard that never lets a stale one run.

The pure-Python modules are the default and the reference. ``pip install -e '.[fast]'`` brings mypy, whose mypyc
compiles typed Python to C extensions; ``python -m arkserve.gateway.fastbuild build`` (``fastbuild.py``) then
compiles the modules in :data:`HOT` next to their sources (one small extension per module plus one shared library,
``hotpath__mypyc``) and writes ``fast.json`` with the SHA-256 of each source it compiled.

Python's import system prefers an extension to a ``.py`` of the same name, so without a check an edited source
would keep running its old compiled code. :func:`guard` (run when ``arkserve.gateway`` is imported, before any hot
module) hashes the hot sources and compares them with ``fast.json``: when anything differs (a source edited since,
a compiled file missing, no manifest), it installs an import hook that loads every hot module from its ``.py``
file. It is all or nothing: compiled modules call each other's native code directly, so half of each is never
loaded.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HOT = ("http", "relay", "exchange", "request", "proxy", "upstream", "core", "balancer", "auth", "metrics")
GROUP = "hotpath"  # the shared library: hotpath__mypyc<suffix>
MANIFEST = "fast.json"
PKG = Path(__file__).resolve().parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
PREFIX = "arkserve.gateway."


def compiled_files(pkg: Path = PKG) -> list[Path]:
    """The compiled files a build leaves in ``pkg`` (present or not)."""
    return [pkg / f"{m}{SUFFIX}" for m in HOT] + [pkg / f"{GROUP}__mypyc{SUFFIX}"]


def source_hashes(pkg: Path = PKG) -> dict[str, str]:
    return {m: hashlib.sha256((pkg / f"{m}.py").read_bytes()).hexdigest() for m in HOT}


def state(pkg: Path = PKG) -> str:
    """``pure`` (no compiled file), ``compiled`` (all present and built from these very sources) or ``stale: why``."""
    present = [f for f in compiled_files(pkg) if f.exists()]
    if not present:
        return "pure"
    if len(present) < len(HOT) + 1:
        return "stale: compiled files missing: " + ", ".join(f.name for f in compiled_files(pkg) if not f.exists())
    try:
        built = json.loads((pkg / MANIFEST).read_text())["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"stale: no readable {MANIFEST}"
    changed = [m for m, h in source_hashes(pkg).items() if built.get(m) != h]
    if changed:
        return "stale: changed since the build: " + ", ".join(f"{m}.py" for m in changed)
    return "compiled"


class _Sources(importlib.abc.MetaPathFinder):
    """Loads the hot modules of one package directory from their ``.py`` files, whatever lies beside them."""

    def __init__(self, pkg: Path) -> None:
        self.pkg = pkg

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        short = fullname[len(PREFIX):] if fullname.startswith(PREFIX) else ""
        if short not in HOT or (path is not None and not any(Path(p).resolve() == self.pkg for p in path)):
            return None
        return importlib.util.spec_from_file_location(fullname, self.pkg / f"{short}.py")


def use_sources(pkg: Path = PKG) -> None:
    """Load the hot modules from their sources from now on (before they are imported)."""
    if not any(isinstance(f, _Sources) and f.pkg == pkg for f in sys.meta_path):
        sys.meta_path.insert(0, _Sources(pkg))


def guard(pkg: Path = PKG) -> str:
    """Decide, once per process, which hot path this import gets; see the module docstring."""
    mode = state(pkg)
    if mode.startswith("stale"):
        use_sources(pkg)
    return mode


MODE = guard()  # on import (arkserve.gateway imports this module first): "pure", "compiled" or "stale: <why>"
