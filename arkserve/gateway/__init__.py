"""The gateway data plane: signed service endpoints, balancing, streaming proxy.

Public surface: :class:`GatewayConfig`, :class:`Gateway` (in-process, async), :func:`run_gateway`
(blocking, multi-worker), the request-log sinks and the snapshot source protocol.
"""

from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.requestlog import BatchingSink, JsonLinesSink, MemorySink, RecordSink, RequestRecord
from arkserve.gateway.server import Gateway, run_gateway
from arkserve.gateway.snapshot import SnapshotHolder, SnapshotSource, StaticSource

__all__ = [
    "BatchingSink",
    "Gateway",
    "GatewayConfig",
    "JsonLinesSink",
    "MemorySink",
    "RecordSink",
    "RequestRecord",
    "SnapshotHolder",
    "SnapshotSource",
    "StaticSource",
    "run_gateway",
]
