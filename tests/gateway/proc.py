"""Run a gateway process for tests: ``python -m tests.gateway.proc --port P --upstream U [...]``."""

from __future__ import annotations

import argparse
import base64
import logging

from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.gateway import GatewayConfig, JsonLinesSink, StaticSource, run_gateway
from tests.gateway.harness import SK


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--admin-port", type=int, default=-1)
    p.add_argument("--log", default="")
    p.add_argument("--auth", action="store_true")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    route = ServiceRoute(name="svc", owner_id=1, auth=a.auth, upstreams=(Upstream("r", "127.0.0.1", a.upstream),),
                         gateway_port=a.port)
    snap = RoutingSnapshot(version=1, services={"svc": route},
                           keys={"AKOWNER": KeyEntry("AKOWNER", base64.b64decode(SK), user_id=1, is_admin=False)})
    sink = (lambda: JsonLinesSink(a.log, interval_s=0.1)) if a.log else None
    run_gateway(GatewayConfig(admin_port=a.admin_port, shutdown_grace_s=5), StaticSource(snap), sink, None, a.workers)


if __name__ == "__main__":
    main()
