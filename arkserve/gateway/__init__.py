"""The gateway data plane: signed service endpoints, balancing, streaming proxy.

Public surface: :class:`GatewayConfig`, :class:`Gateway` (in-process, async), :func:`run_gateway`
(blocking, multi-worker), the request-log sinks and the snapshot source protocol.

The hot path runs compiled when the optional build is present and current, else as Python (``fast.py``).
"""

from arkserve.gateway import fast  # first: fast.guard() picks the hot path before any hot module loads
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.requestlog import (
    BatchingSink,
    JsonLinesSink,
    MemorySink,
    PipedSink,
    RecordSink,
    RequestRecord,
    RequestRow,
)
from arkserve.gateway.server import Gateway, run_gateway
from arkserve.gateway.snapshot import SnapshotHolder, SnapshotSource, StaticSource

__all__ = [
    "BatchingSink",
    "Gateway",
    "GatewayConfig",
    "JsonLinesSink",
    "MemorySink",
    "PipedSink",
    "RecordSink",
    "RequestRecord",
    "RequestRow",
    "SnapshotHolder",
    "SnapshotSource",
    "StaticSource",
    "fast",
    "run_gateway",
]
