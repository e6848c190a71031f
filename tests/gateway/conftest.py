"""Fixtures: real replica servers and a gateway factory (gateway on its own uvloop thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arkserve.domain.routing import RoutingSnapshot
from arkserve.gateway import GatewayConfig
from tests.gateway.harness import GatewayThread, Replica

FAST = {"admin_port": 0, "tick_s": 0.05, "snapshot_poll_s": 0.1}


@pytest.fixture
def replicas() -> Iterator[Callable[[str], Replica]]:
    made: list[Replica] = []

    def make(name: str) -> Replica:
        r = Replica(name)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def gateway() -> Iterator[Callable[..., GatewayThread]]:
    made: list[GatewayThread] = []

    def make(snap: RoutingSnapshot, ssl_context: Any = None, sink: Any = None, **config: Any) -> GatewayThread:
        g = GatewayThread(GatewayConfig(**{**FAST, **config}), snap, ssl_context, sink)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()
