"""Build or remove the optional compiled hot path: ``python -m arkserve.gateway.fastbuild [status|build|remove]``.

``build`` needs the ``[fast]`` extra (mypy, whose mypyc does the compiling) and a C compiler with the Python
headers (Debian: ``gcc`` and ``python3-dev``). It compiles :data:`fast.HOT` in a temporary directory, puts the
extensions next to their sources and records the sources' hashes in ``fast.json``; :mod:`arkserve.gateway.fast`
loads them only while those hashes still match. ``remove`` deletes them (the pure-Python path again).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from arkserve.gateway.fast import GROUP, HOT, MANIFEST, PKG, PREFIX, SUFFIX, compiled_files, source_hashes, state


def remove(pkg: Path = PKG) -> list[Path]:
    gone = [f for f in [*compiled_files(pkg), pkg / MANIFEST] if f.exists()]
    for f in gone:
        f.unlink()
    return gone


def build(pkg: Path = PKG, opt_level: str = "3") -> list[Path]:
    """Compile :data:`HOT` with mypyc (needs the ``[fast]`` extra and a C compiler with the Python headers)."""
    try:
        from mypyc.build import mypycify  # the [fast] extra
        from setuptools import setup
    except ImportError as exc:
        raise SystemExit(f"mypyc is not installed ({exc}): pip install -e '.[fast]'") from exc
    hashes = source_hashes(pkg)
    with tempfile.TemporaryDirectory(prefix="arkserve-fast-") as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # mypyc writes its C and cache here; setuptools reads no project config here
        try:
            exts = mypycify([*(str(pkg / f"{m}.py") for m in HOT), "--ignore-missing-imports"],
                            opt_level=opt_level, group_name=f"{PREFIX}{GROUP}", target_dir=f"{tmp}/c")
            setup(name="arkserve-gateway-fast", ext_modules=exts,
                  script_args=["-q", "build_ext", "--build-lib", f"{tmp}/lib", "--build-temp", f"{tmp}/obj"])
        finally:
            os.chdir(cwd)
        remove(pkg)
        out = Path(tmp, "lib", *PREFIX.rstrip(".").split("."))
        for f in compiled_files(pkg):
            shutil.copy2(out / f.name, f)
    (pkg / MANIFEST).write_text(json.dumps({"sources": hashes, "suffix": SUFFIX}, indent=1) + "\n")
    if source_hashes(pkg) != hashes:  # edited while compiling: the guard would refuse it anyway
        (pkg / MANIFEST).unlink()
    return compiled_files(pkg)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else "status"
    if cmd == "build":
        for f in build():
            print(f)
        print(state())
    elif cmd == "remove":
        for f in remove():
            print(f"removed {f}")
    elif cmd == "status":
        print(state())
    else:
        print("usage: python -m arkserve.gateway.fastbuild [status|build|remove]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
