"""Before/after in one sitting for the benches that take ``--root DIR``: run the bench again in fresh processes,
alternating ``arkserve`` packages (e.g. the commit before, unpacked with ``git archive``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def add_options(ap: argparse.ArgumentParser) -> None:
    """``--root DIR`` (repeatable) and ``--runs N`` on a bench's command line."""
    ap.add_argument("--root", action="append", help="also run the arkserve package in this directory (e.g. the "
                    "commit before, from git archive), alternating with this tree's, each run in a fresh process; "
                    "given twice: those two alternating")
    ap.add_argument("--runs", type=int, default=2, help="with --root: runs of each")


def alternate(roots: list[str], runs: int, argv: list[str]) -> None:
    """Run ``argv`` (this bench and its options) ``runs`` times, once per package in ``roots`` each time, and with
    this tree's package too when only one root is given."""
    for i in range(runs):
        for label, path in [(r, r) for r in roots] + ([("this tree", "")] if len(roots) == 1 else []):
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            if path:
                env["PYTHONPATH"] = path
            print(f"=== run {i + 1} of {runs}: arkserve from {label}", flush=True)
            subprocess.run([sys.executable, *argv], env=env, check=True)
