"""What the reconciler makes of the Kubernetes runtime's answers: the errors and exit reasons the mapping derives
from Pods (``kube_status``), handed to a real reconciler over a real store through the in-memory runtime."""

from __future__ import annotations

import time
from pathlib import Path

from arkserve.runtimes.kube_status import pod_info, pod_problem
from tests.capacity.conftest import GpuCluster, gpu_cluster
from tests.capacity.fake_nvml import FakeNVML
from tests.runtimes.fake import FakeHost, FakeRuntime

from .kube_fixtures import pod

SCHEDULER = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."


def _status(c: GpuCluster, name: str) -> tuple[str, str, str]:
    svc = c.service(name)
    assert svc is not None
    return svc.status, svc.reason, svc.message


def test_an_unschedulable_pod_is_a_pending_unschedulable_service_with_the_schedulers_words(tmp_path: Path) -> None:
    rt = FakeRuntime(FakeHost(), clock=time.time)
    problem = pod_problem(pod("Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                      "reason": "Unschedulable", "message": SCHEDULER}]))
    assert problem is not None
    rt.fail_start("waits", problem.error(), times=1000)
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([])) as c:
        c.create("waits", 1)
        c.wait("pending/Unschedulable", lambda: _status(c, "waits")[:2] == ("pending", "Unschedulable"))
        assert SCHEDULER in _status(c, "waits")[2]


def test_an_image_pull_refusal_fails_the_service_as_image_pull_denied(tmp_path: Path) -> None:
    rt = FakeRuntime(FakeHost(), clock=time.time)
    problem = pod_problem(pod("Pending", container_state={"waiting": {
        "reason": "ErrImagePull", "message": 'failed to pull and unpack image "127.0.0.1:5000/alice/flowers:1": '
        "failed to authorize: 401 Unauthorized"}}))
    assert problem is not None
    rt.fail_start("denied", problem.error(), times=1000)
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([])) as c:
        c.create("denied", 1)
        c.wait("failed/ImagePullDenied", lambda: _status(c, "denied")[:2] == ("failed", "ImagePullDenied"))
        assert "401 Unauthorized" in _status(c, "denied")[2]


def test_an_oom_killed_replica_is_restarted_with_the_reason(tmp_path: Path) -> None:
    rt = FakeRuntime(FakeHost(), clock=time.time)
    oom = pod_info(pod("Failed", container_state={"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                 "startedAt": "2026-11-30T21:00:07Z",
                                                                 "finishedAt": "2026-11-30T21:01:00Z"}}))
    assert oom is not None and oom.exit_code is not None
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([])) as c:
        c.create("hungry", 1)
        c.wait("a replica", lambda: bool(rt.list()))
        [first] = rt.list()
        rt.exit("hungry", first.replica, oom.exit_code, oom.error)
        c.wait("the crash", lambda: bool(c.event_messages("hungry", "crashed")))
        [crashed] = c.event_messages("hungry", "crashed")
        assert "exited with code 137 (OOMKilled: the replica ran out of memory (memory limit 4Gi))" in crashed
        c.wait("the restart", lambda: bool(c.event_messages("hungry", "restarted")))
