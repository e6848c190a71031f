"""The in-memory runtime keeps the contract and its knobs do what reconciler tests need."""

from __future__ import annotations

import pytest

from arkserve.errors import PermanentError, TemporaryError
from arkserve.runtimes.base import ReplicaPhase, ReplicaSpec, Runtime
from tests.runtimes.fake import FakeHost, FakeRuntime


def spec(replica: str = "r0000a1", service: str = "svc", gpus: int = 0) -> ReplicaSpec:
    return ReplicaSpec(service, replica, "rev1", "img", "serve", 8000, gpus=gpus)


def test_lifecycle_and_protocol() -> None:
    rt: Runtime = FakeRuntime()
    info = rt.start(spec())
    assert info.phase is ReplicaPhase.RUNNING and info.host == "127.0.0.1" and info.port == 30000
    assert rt.start(spec()) == info  # idempotent
    assert rt.list() == [info] and rt.inspect("svc", "r0000a1") == info
    rt.stop("svc", "r0000a1")
    rt.stop("svc", "r0000a1")
    assert rt.list() == [] and rt.inspect("svc", "r0000a1") is None


def test_knobs_exit_hang_fail_and_sigterm() -> None:
    rt = FakeRuntime()
    rt.fail_start("svc", PermanentError("bad image"), times=2)
    for _ in range(2):
        with pytest.raises(PermanentError, match="bad image"):
            rt.start(spec())
    rt.start(spec())
    rt.exit("svc", "r0000a1", 3, error="boom")
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and (info.phase, info.exit_code, info.error) == (ReplicaPhase.EXITED, 3, "boom")
    assert rt.start(spec()).runtime_id == "fake-2"  # an exited replica is replaced
    rt.hang("svc")
    assert rt.start(spec("r0000a2")).phase is ReplicaPhase.CREATED
    rt.run("svc", "r0000a2")
    assert rt.inspect("svc", "r0000a2").phase is ReplicaPhase.RUNNING  # type: ignore[union-attr]
    rt.ignore_sigterm("other")
    rt.start(spec("r0000b1", service="other"))
    rt.stop("other", "r0000b1")
    assert rt.host.stopped[-1].stopped_with == "SIGKILL"
    assert ("stop", "other", "r0000b1") in rt.calls


def test_capacity_gpus_and_adoption_through_a_shared_host() -> None:
    host = FakeHost(capacity=1, gpus=1)
    first = FakeRuntime(host)
    with pytest.raises(TemporaryError, match="insufficient GPUs: want 2, have 1"):
        first.start(spec(gpus=2))
    info = first.start(spec(gpus=1))
    with pytest.raises(TemporaryError, match="capacity"):
        first.start(spec("r0000a2"))
    first.close()
    second = FakeRuntime(host)  # a restarted reconciler
    assert second.list() == [info]
    second.stop("svc", "r0000a1")
    assert first.list() == []
