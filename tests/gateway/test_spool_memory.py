"""A body the gateway must hold before forwarding (a signed payload, an asynchronous submission) sent in tiny chunks
stays near its own size in memory: each received piece kept as its own bytes object cost ~40 bytes more, so 1 MiB
sent in 2-byte chunks held 25 MiB of a worker, and a few hundred slow anonymous clients could exhaust it."""

from __future__ import annotations

import tracemalloc

from arkserve.gateway.spool import Spool


def test_tiny_pieces_do_not_multiply_memory() -> None:
    tracemalloc.start()
    spool = Spool(1024 * 1024)
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(512 * 1024):
        spool.write(b"ZZ"[:1] + b"Z")  # a new 2-byte bytes object each time, as llhttp hands each chunk's data
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert spool.size == 1024 * 1024
    assert held < 3 * 1024 * 1024, f"{held / 2**20:.1f} MiB held for 1 MiB of body"
    spool.rewind()
    assert b"".join(iter(lambda: spool.read(1 << 16), b"")) == b"Z" * (1024 * 1024)


def test_small_and_large_pieces_keep_their_order_in_memory_and_in_the_file() -> None:
    parts = [b"a" * 10, b"b" * 5000, b"c" * 3, b"d" * 7, b"e" * 70_000, b"f"]
    for limit in (1 << 20, 6000):  # all in memory; moved to a file halfway
        spool = Spool(limit)
        for p in parts:
            spool.write(p)
        spool.rewind()
        assert b"".join(iter(lambda s=spool: s.read(1 << 16), b"")) == b"".join(parts)  # type: ignore[misc]
        assert (spool.pieces is None) == (limit == 6000)
        spool.close()
