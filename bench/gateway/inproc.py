"""Python cost of one proxied request, without sockets: the gateway's protocols driven in-process.

``.venv/bin/python bench/gateway/inproc.py`` feeds a signed GET (the same one again and again, then
5,000 different ones, each with its own signature) and a signed 100 KB POST into a
:class:`ClientConnection` with a fake transport, answers from a pooled fake upstream connection and
prints microseconds per request. Kernel time (4 socket syscalls and epoll per request) is not in it;
use ``bench/gateway/run.py`` for the end-to-end ratio against nginx. A profile of the same loop:
``--profile``. ``--cpu`` times with the thread's CPU clock instead of the wall clock (steadier on a
shared box); ``--root DIR`` measures the gateway of another checkout (``git archive OLD arkserve |
tar -x -C DIR``) with this same harness, to compare two versions in one sitting. With the optional compiled hot path
built (``python -m arkserve.gateway.fastbuild build``) it measures that; ``--pure`` loads the hot modules from their
``.py`` files anyway, so the two can alternate in one sitting. ``--unsigned`` adds a 100 KB POST with an unsigned
payload (streamed to the replica as it arrives, no spool).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import importlib.util
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

_here = str(Path(__file__).resolve().parents[2])
_root = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv[:-1] else _here
sys.path[:0] = [_root, str(Path(__file__).resolve().parent)]
if "--pure" in sys.argv:  # before arkserve.gateway is imported: its fast.py, loaded on its own, forces the sources
    _spec = importlib.util.spec_from_file_location("_inproc_fast", Path(_root, "arkserve", "gateway", "fast.py"))
    assert _spec is not None and _spec.loader is not None
    _fast = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_fast)
    _fast.use_sources(Path(_root, "arkserve", "gateway").resolve())

from gateway_proc import AK, SK  # noqa: E402

import arkserve  # noqa: E402
from arkserve.auth.signing import sign_headers  # noqa: E402
from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream  # noqa: E402
from arkserve.gateway import proxy  # noqa: E402
from arkserve.gateway.config import GatewayConfig  # noqa: E402
from arkserve.gateway.core import Core  # noqa: E402
from arkserve.gateway.proxy import ClientConnection  # noqa: E402
from arkserve.gateway.requestlog import BatchingSink  # noqa: E402
from arkserve.gateway.upstream import UpstreamConnection  # noqa: E402

PORT, UP = 20001, ("127.0.0.1", 29999)
RESPONSE = (b'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 21:00:00 GMT\r\n'
            b'Content-Type: application/json\r\nContent-Length: 27\r\nConnection: keep-alive\r\n\r\n'
            b'{"replica":"r0","ok":true}\n')


class Transport:
    """Enough of ``asyncio.Transport`` for the protocols: counts what they write."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        for p in parts:
            self.written += len(p)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def request(method: str, body: bytes, path: str = "/v1/predict", unsigned: bool = False) -> bytes:
    h = sign_headers(method=method, url=path, host=f"127.0.0.1:{PORT}", access_key=AK, secret_key=SK,
                     body=None if unsigned else body, now=time.time())
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{PORT}", "User-Agent: wrk",
             "Accept: */*", *(f"{k}: {v}" for k, v in h.items() if k.lower() != "host")]
    if body:
        lines += ["Content-Type: application/octet-stream", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def setup(auth: bool) -> tuple[ClientConnection, UpstreamConnection]:
    route = ServiceRoute(name="bench", owner_id=1, auth=auth, upstreams=(Upstream("r0", *UP),), gateway_port=PORT)
    snap = RoutingSnapshot(version=1, services={"bench": route},
                           keys={AK: KeyEntry(AK, base64.b64decode(SK), user_id=1, is_admin=False)})
    core = Core(GatewayConfig(admin_port=-1, max_body_bytes=1 << 30), BatchingSink(lambda batch: None))
    core.apply(snap)
    conn = ClientConnection(core, PORT, tls=False)
    conn.connection_made(Transport())  # type: ignore[arg-type]
    up = UpstreamConnection(core.upstreams, UP)
    up.connection_made(Transport())  # type: ignore[arg-type]
    core.upstreams.put(up)
    return conn, up


async def run(n: int, profile: bool, clock: Any = time.perf_counter, unsigned: bool = False) -> None:
    body = os.urandom(100 * 1024)
    get = request("GET", b"")
    distinct = [request("GET", b"", f"/v1/predict?n={i}") for i in range(5000)]  # more than the cache holds
    cases = [("GET, auth on", True, [get], 1), ("GET, auth off", False, [get], 1),
             ("GET, auth on, new", True, distinct, 1), ("GET, auth off, new", False, distinct, 1),
             ("POST 100KB signed", True, [request("POST", body)], 2)]
    if unsigned:  # the body streams to the replica as it comes (no hash to check first, so no spool)
        cases.append(("POST 100KB unsigned", True, [request("POST", body, unsigned=True)], 2))
    results: dict[str, float] = {}
    hot = "compiled" if not (proxy.__file__ or "").endswith(".py") else "pure Python"
    print(f"arkserve from {Path(arkserve.__file__).parent.parent}; {clock.__name__}; hot path {hot}")
    for label, auth, reqs, pieces in cases:
        conn, up = setup(auth)
        step = -(-len(reqs[0]) // pieces)
        feeds = [[req[i:i + step] for i in range(0, len(req), step)] for req in reqs]
        turn = iter(range(1 << 62))

        def once(feeds: list[list[bytes]] = feeds, conn: ClientConnection = conn, up: UpstreamConnection = up,
                 turn: Any = turn) -> None:
            for c in feeds[next(turn) % len(feeds)]:
                conn.data_received(c)
            up.data_received(RESPONSE)

        for _ in range(2000):
            once()
        assert conn.transport.written > 2000 * len(RESPONSE) and not conn.closed  # type: ignore[union-attr]
        prof = cProfile.Profile() if profile else None
        best = float("inf")
        for _ in range(5):
            if prof:
                prof.enable()
            t = clock()
            for _ in range(n):
                once()
            best = min(best, (clock() - t) / n)
            if prof:
                prof.disable()
        results[label] = best * 1e6
        print(f"{label:20} {best * 1e6:7.2f} us/request (best of 5 x {n})")
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    off = results["GET, auth off"]
    print(f"signature check, a repeated request (cache hit): {results['GET, auth on'] - off:.2f} us")
    new = results["GET, auth on, new"] - results["GET, auth off, new"]
    print(f"signature check, every request signed anew:      {new:.2f} us")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--cpu", action="store_true", help="time with the thread's CPU clock, not the wall clock")
    ap.add_argument("--root", help="import arkserve from this checkout instead of this one's")
    ap.add_argument("--pure", action="store_true", help="the hot modules from their .py files even when compiled")
    ap.add_argument("--unsigned", action="store_true", help="also a 100 KB POST with an unsigned payload (streamed)")
    a = ap.parse_args()
    asyncio.run(run(a.n, a.profile, time.thread_time if a.cpu else time.perf_counter, a.unsigned))


if __name__ == "__main__":
    main()
