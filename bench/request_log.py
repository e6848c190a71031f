"""The gateway's request-log writer (``python -m arkserve.store.request_writer``) on SQLite and PostgreSQL.

Each round starts the real writer the way a gateway worker does (``request_writer.launch``), hands it
``--batches`` batches of 1 000 rows on its stdin (the framing of ``PipedSink``; rows as the hot path makes
them, times increasing like a live gateway's), closes the pipe and waits for it. It reports CPU per row: the
writer's own (from ``wait4``, less that of a writer started and stopped without rows just before), and for PostgreSQL
also the server's (its processes' CPU plus that of the backends it reaped, so the writer's backend is counted
after it exits). Rounds alternate between the stores; medians.

    .venv/bin/python bench/request_log.py                     # SQLite and a throwaway PostgreSQL (tests/pg.py)
    .venv/bin/python bench/request_log.py --postgres URL      # an existing server's database (migrated here)
    .venv/bin/python bench/request_log.py --batches 50 --rounds 1   # the quick run tests/store use
"""

from __future__ import annotations

import argparse
import contextlib
import marshal
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arkserve.store import request_writer  # noqa: E402
from arkserve.store.db import open_store  # noqa: E402
from tests import pg  # noqa: E402

ROWS_PER_BATCH = 1000


def batches(count: int) -> Iterator[bytes]:
    """``count`` framed batches of rows shaped like a signed GET's (``events.REQUEST_FIELDS`` order)."""
    t = time.time()
    for b in range(count):
        rows = [(t + (b * ROWS_PER_BATCH + i) * 1e-5, "flowers", "r-7f3a9c21", "GET", "/flowers?top=5", 200,
                 0.2 + i * 1e-4, 0, 312, "", "127.0.0.1", f"gw-{b:05d}-{i:04d}-5b1e0c", "3")
                for i in range(ROWS_PER_BATCH)]
        data = marshal.dumps(rows)
        yield len(data).to_bytes(8, "little") + data


def server_cpu(user: str = "postgres") -> float:
    """CPU seconds of the PostgreSQL server: its live processes, plus the children they reaped (backends)."""
    import pwd

    uid, total = pwd.getpwnam(user).pw_uid, 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def write(url: str, count: int) -> tuple[float, float]:
    """(writer CPU s, server CPU s) for ``count`` batches through one writer process."""
    argv, env = request_writer.launch(url)
    s0 = server_cpu() if url.startswith("postgres") else 0.0
    child = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE)
    assert child.stdin is not None
    for frame in batches(count):
        child.stdin.write(frame)
    child.stdin.close()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"the writer exited with {child.returncode}")
    server = server_cpu() - s0 if url.startswith("postgres") else 0.0
    return usage.ru_utime + usage.ru_stime, server


def stored(url: str) -> int:
    from sqlalchemy import func, select

    from arkserve.store.tables import request_log

    store = open_store(url, migrate_schema=False)
    try:
        with store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(request_log)).scalar_one())
    finally:
        store.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=300, help="batches of 1 000 rows per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--postgres", help="a PostgreSQL database URL (default: a throwaway server, tests/pg.py)")
    a = ap.parse_args()
    with contextlib.ExitStack() as stack:
        pg_url = a.postgres
        if pg_url is None:
            pg_url = pg.fresh_database(stack.enter_context(pg.postgres_server()).url)
        urls = {"sqlite": f"sqlite:///{tempfile.mkdtemp(prefix='arkserve-bench-')}/requests.db",
                "postgresql": pg_url}
        for url in urls.values():
            open_store(url).dispose()  # migrated
        for url in urls.values():
            write(url, 0)  # warm-up: the first start reads the modules from disk
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        for _ in range(a.rounds):
            for name, url in urls.items():
                empty, full = write(url, 0), write(url, a.batches)  # a writer's start and stop alone, then with rows
                runs[name].append((full[0] - empty[0], full[1]))
        rows = a.batches * ROWS_PER_BATCH
        print(f"{a.rounds} rounds of {rows} rows per store ({a.batches} batches of {ROWS_PER_BATCH}), alternating; "
              f"{os.cpu_count()} cores; medians")
        print(f"{'store':12} {'writer us/row':>14} {'server us/row':>14} {'total us/row':>13} {'rows stored':>12}")
        for name, url in urls.items():
            writer = statistics.median(w for w, _ in runs[name]) / rows * 1e6
            server = statistics.median(s for _, s in runs[name]) / rows * 1e6
            print(f"{name:12} {writer:>14.1f} {server:>14.1f} {writer + server:>13.1f} {stored(url):>12}")


if __name__ == "__main__":
    main()
