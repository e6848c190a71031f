"""Run the arkserve gateway for the benchmark: one service on ``--port`` in front of ``--upstream``,
auth on, one key (the benchmark's pre-signed requests use it). ``--request-log URL``: every request is logged
to that store the way ``arkserve gateway`` does it (a ``PipedSink`` per worker and its writer process,
``arkserve.store.request_writer``); without it the records are dropped in the sink's thread."""

from __future__ import annotations

import argparse
import base64
import logging
from pathlib import Path

from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.gateway import BatchingSink, GatewayConfig, StaticSource, run_gateway
from arkserve.store.db import open_store
from arkserve.tls import server_context

AK = "AKBENCH0000000000001"
SK = "uFDCEZCbi5bya6DinCwW2GxEfzkxTnlbzN0mGlxSCg4="


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", type=int, action="append", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--admin-port", type=int, default=-1)
    p.add_argument("--no-auth", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--request-log", metavar="URL", help="a store's database URL, e.g. sqlite:////tmp/x/requests.db")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ups = tuple(Upstream(f"r{i}", "127.0.0.1", port) for i, port in enumerate(a.upstream))
    route = ServiceRoute(name="bench", owner_id=1, auth=not a.no_auth, upstreams=ups, gateway_port=a.port)
    snap = RoutingSnapshot(version=1, services={"bench": route},
                           keys={AK: KeyEntry(AK, base64.b64decode(SK), user_id=1, is_admin=False)})
    if a.request_log:
        open_store(a.request_log).dispose()  # migrated once, before the workers fork

    def sink() -> BatchingSink:  # in each worker, as cli/parts.py's gateway command
        if not a.request_log:
            return BatchingSink(lambda batch: None)
        from arkserve.gateway import PipedSink  # here: inproc.py imports AK and SK with older trees (--root)
        from arkserve.store import request_writer

        argv, env = request_writer.launch(a.request_log)
        return PipedSink(argv, env=env)

    run_gateway(GatewayConfig(admin_port=a.admin_port, max_body_bytes=1 << 30), StaticSource(snap), sink,
                server_context(Path(a.tls_cert), Path(a.tls_key)) if a.tls_cert else None, a.workers)


if __name__ == "__main__":
    main()
