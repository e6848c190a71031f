"""Run the arkserve gateway for the benchmark: one service on ``--port`` in front of ``--upstream``,
auth on, one key (the benchmark's pre-signed requests use it)."""

from __future__ import annotations

import argparse
import base64
import logging
from pathlib import Path

from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.gateway import BatchingSink, GatewayConfig, StaticSource, run_gateway
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
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ups = tuple(Upstream(f"r{i}", "127.0.0.1", port) for i, port in enumerate(a.upstream))
    route = ServiceRoute(name="bench", owner_id=1, auth=not a.no_auth, upstreams=ups, gateway_port=a.port)
    snap = RoutingSnapshot(version=1, services={"bench": route},
                           keys={AK: KeyEntry(AK, base64.b64decode(SK), user_id=1, is_admin=False)})
    run_gateway(GatewayConfig(admin_port=a.admin_port, max_body_bytes=1 << 30), StaticSource(snap),
                lambda: BatchingSink(lambda batch: None),
                server_context(Path(a.tls_cert), Path(a.tls_key)) if a.tls_cert else None, a.workers)


if __name__ == "__main__":
    main()
