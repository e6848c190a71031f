"""What one routing change costs a gateway worker at N services (issue 16: "well under a millisecond").

A SQLite store with N settled services (``bench/controlplane.py``'s ``make_store``); then, per round, one
service gains or loses a ready replica and the worker's source reads it: ``version()`` (the poll) and
``load()`` (the delta), timed by the CPU clock of the thread. ``--root DIR`` imports the ``arkserve``
package from DIR instead (e.g. an older commit from ``git archive``), for before/after in one sitting.

    .venv/bin/python bench/snapshot_change.py [--services 10000] [--changes 400] [--root /tmp/before]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=400)
    ap.add_argument("--root", help="import arkserve from this directory")
    args = ap.parse_args()
    if args.root:
        sys.path.insert(0, args.root)
    sys.path.insert(0, str(Path(__file__).parent))
    import controlplane as cp

    import arkserve
    from arkserve.auth.vault import MasterKey
    from arkserve.store.routing import StoreSnapshotSource

    with tempfile.TemporaryDirectory() as tmp:
        store, _ = cp.make_store(Path(tmp), args.services)
        source = StoreSnapshotSource(store, MasterKey.generate(), worker="bench")
        source.applied(source.load().version)
        fake: dict[int, str] = {}
        loads, polls = [], []
        for k in range(args.changes):
            cp._flip(store, 1 + (k * 104729) % (args.services - 1), fake)
            c0 = time.thread_time()
            source.version()
            c1 = time.thread_time()
            snap = source.load()
            loads.append(time.thread_time() - c1)
            polls.append(c1 - c0)
            source.applied(snap.version)
        store.dispose()
    print(f"{Path(arkserve.__file__).parent}: {args.services} services, {args.changes} changes: "
          f"load() median {statistics.median(loads) * 1000:.3f} ms, version() median "
          f"{statistics.median(polls) * 1000:.3f} ms (CPU of the thread)")


if __name__ == "__main__":
    main()
