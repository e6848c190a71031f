"""The kubernetes runtime's reading of Pods and API errors: each shape the cluster sends, in the platform's words.

Pods and events are the API server's JSON passed through the client's own models (``kube_fixtures``).
"""

from __future__ import annotations

import pytest

from arkserve.errors import PermanentError, TemporaryError
from arkserve.runtimes.base import ReplicaPhase
from arkserve.runtimes.kube_status import api_error, parse_time, pod_info, pod_problem

from .kube_fixtures import BASE_POD, as_client_returns, event, pod, status_body

DIGEST = "sha256:8f4c2a0d6b1e3f5a7c9e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a"
RUNNING = {"running": {"startedAt": "2026-11-30T21:00:07Z"}}


def test_a_running_pod_is_a_running_replica_at_its_pod_ip() -> None:
    p = pod("Running", container_state=RUNNING, pod_ip="10.244.1.17",
            image_id=f"127.0.0.1:5000/alice/flowers@{DIGEST}")
    info = pod_info(p)
    assert info is not None
    assert (info.service, info.replica, info.revision) == ("flowers", "r0000a1", "3f2a9c1")
    assert (info.phase, info.host, info.port) == (ReplicaPhase.RUNNING, "10.244.1.17", 8000)
    assert info.started_at == parse_time("2026-11-30T21:00:07Z") and info.started_at > 1.7e9
    assert info.runtime_id == BASE_POD["metadata"]["uid"] and info.image_digest == DIGEST
    assert info.exit_code is None and info.error == "" and pod_problem(p) is None


def test_a_pod_being_created_is_created_with_no_problem() -> None:
    p = pod("Pending", container_state={"waiting": {"reason": "ContainerCreating"}},
            conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T21:00:01Z"}])
    info = pod_info(p)
    assert info is not None and info.phase is ReplicaPhase.CREATED and info.host == ""
    assert pod_problem(p) is None


def test_an_unschedulable_pod_waits_with_the_schedulers_message() -> None:
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
    p = pod("Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": message, "lastTransitionTime": "2026-11-30T21:00:01Z"}])
    problem = pod_problem(p)
    assert problem is not None and (problem.code, problem.permanent) == ("Unschedulable", False)
    assert message in problem.message
    err = problem.error()
    assert isinstance(err, TemporaryError) and not isinstance(err, PermanentError) and err.code == "Unschedulable"
    info = pod_info(p)
    assert info is not None and info.phase is ReplicaPhase.CREATED and message in info.error


@pytest.mark.parametrize(("reason", "message", "code"), [
    ("ErrImagePull", 'failed to pull and unpack image "127.0.0.1:5000/alice/flowers:1": failed to resolve reference '
     '"127.0.0.1:5000/alice/flowers:1": 127.0.0.1:5000/alice/flowers:1: not found', "ImageNotFound"),
    ("ErrImagePull", 'rpc error: code = NotFound desc = failed to pull and unpack image "127.0.0.1:5000/alice/'
     'flowers:1": failed to resolve reference: 127.0.0.1:5000/alice/flowers:1: not found', "ImageNotFound"),
    ("ErrImagePull", 'failed to pull and unpack image "127.0.0.1:5000/alice/flowers:1": failed to authorize: failed '
     "to fetch oauth token: unexpected status from GET request to http://127.0.0.1:7780/api/v1/registry/token: "
     "401 Unauthorized", "ImagePullDenied"),
    ("ErrImagePull", 'pull access denied for arkserve-test/nope, repository does not exist or may require '
     "'docker login': denied: requested access to the resource is denied", "ImagePullDenied"),
    ("ErrImageNeverPull", 'Container image "arkserve-test/nope:1" is not present with pull policy of Never',
     "ImageNotFound"),
    ("InvalidImageName", 'Failed to apply default image tag "Bad Image": couldn\'t parse image name',
     "ImageNotFound"),
])
def test_image_pull_errors_are_permanent_in_the_platforms_words(reason: str, message: str, code: str) -> None:
    p = pod("Pending", container_state={"waiting": {"reason": reason, "message": message}})
    problem = pod_problem(p)
    assert problem is not None and problem.code == code and problem.permanent
    err = problem.error()
    assert isinstance(err, PermanentError) and err.code == code and message in err.message
    assert '"127.0.0.1:5000/alice/flowers:1"' in err.message  # the image it is about
    info = pod_info(p)
    assert info is not None and info.phase is ReplicaPhase.CREATED and info.error == problem.message


def test_a_back_off_says_why_from_the_kubelets_events() -> None:
    p = pod("Pending", container_state={"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "127.0.0.1:5000/alice/flowers:1"'}})
    alone = pod_problem(p)
    assert alone is not None and (alone.code, alone.permanent) == ("ImagePullFailed", False)
    events = [
        event("Pulling", 'Pulling image "127.0.0.1:5000/alice/flowers:1"', "2026-11-30T21:00:02Z", "Normal"),
        event("Failed", 'Failed to pull image "127.0.0.1:5000/alice/flowers:1": rpc error: code = Unknown desc = '
              "failed to resolve reference: dial tcp 127.0.0.1:5000: connect: connection refused",
              "2026-11-30T21:00:03Z"),
        event("Failed", 'Failed to pull image "127.0.0.1:5000/alice/flowers:1": failed to resolve reference '
              '"127.0.0.1:5000/alice/flowers:1": 127.0.0.1:5000/alice/flowers:1: not found', "2026-11-30T21:00:09Z"),
        event("BackOff", 'Back-off pulling image "127.0.0.1:5000/alice/flowers:1"', "2026-11-30T21:00:10Z", "Normal"),
    ]
    problem = pod_problem(p, events)
    assert problem is not None and (problem.code, problem.permanent) == ("ImageNotFound", True)
    assert "not found" in problem.message  # the newest failure, not the earlier refused connection


def test_a_registry_that_is_away_is_a_wait_not_a_failure() -> None:
    p = pod("Pending", container_state={"waiting": {
        "reason": "ErrImagePull", "message": 'failed to pull and unpack image "127.0.0.1:5000/alice/flowers:1": '
        "dial tcp 127.0.0.1:5000: connect: connection refused"}})
    problem = pod_problem(p)
    assert problem is not None and (problem.code, problem.permanent) == ("ImagePullFailed", False)


def test_a_container_config_error_is_permanent() -> None:
    p = pod("Pending", container_state={"waiting": {"reason": "CreateContainerConfigError",
                                                    "message": 'secret "db" not found'}})
    problem = pod_problem(p)
    assert problem is not None and problem.permanent and problem.code == "CreateContainerError"
    assert 'secret "db" not found' in problem.message


def test_a_crashed_container_is_an_exited_replica_with_its_code() -> None:
    p = pod("Failed", container_state={"terminated": {"exitCode": 3, "reason": "Error",
                                                      "startedAt": "2026-11-30T21:00:07Z",
                                                      "finishedAt": "2026-11-30T21:00:08Z"}}, pod_ip="10.244.1.17")
    info = pod_info(p)
    assert info is not None and (info.phase, info.exit_code, info.error) == (ReplicaPhase.EXITED, 3, "")


def test_a_terminated_container_is_exited_even_before_the_pod_phase_moves() -> None:
    p = pod("Running", container_state={"terminated": {"exitCode": 0, "reason": "Completed",
                                                       "startedAt": "2026-11-30T21:00:07Z",
                                                       "finishedAt": "2026-11-30T21:00:08Z"}})
    info = pod_info(p)
    assert info is not None and (info.phase, info.exit_code) == (ReplicaPhase.EXITED, 0)


def test_oom_killed_is_exited_with_the_reason_and_the_limit() -> None:
    p = pod("Failed", container_state={"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                      "startedAt": "2026-11-30T21:00:07Z",
                                                      "finishedAt": "2026-11-30T21:01:00Z"}})
    info = pod_info(p)
    assert info is not None and (info.phase, info.exit_code) == (ReplicaPhase.EXITED, 137)
    assert info.error.startswith("OOMKilled") and "memory limit 4Gi" in info.error


def test_an_evicted_pod_is_exited_with_the_kubelets_reason() -> None:
    p = pod("Failed", reason="Evicted", message="The node was low on resource: memory.")
    info = pod_info(p)
    assert info is not None and info.phase is ReplicaPhase.EXITED and info.exit_code == -1
    assert info.error == "Evicted: The node was low on resource: memory."


def test_a_pod_without_the_platforms_labels_is_not_a_replica() -> None:
    raw = {**BASE_POD, "metadata": {**BASE_POD["metadata"], "labels": {"app": "other"}}}
    assert pod_info(as_client_returns("V1Pod", raw)) is None


@pytest.mark.parametrize(("status", "reason", "message", "cls", "code"), [
    (403, "Forbidden", 'pods "ark-flowers-r0000a1" is forbidden: exceeded quota: compute, requested: '
     "requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=7, limited: requests.nvidia.com/gpu=8",
     TemporaryError, "QuotaExceeded"),
    (403, "Forbidden", 'pods is forbidden: User "system:serviceaccount:arkserve:reconciler" cannot create resource '
     '"pods" in API group "" in the namespace "arkserve"', PermanentError, "KubernetesForbidden"),
    (401, "Unauthorized", "Unauthorized", PermanentError, "KubernetesForbidden"),
    (422, "Invalid", 'Pod "ark-flowers-r0000a1" is invalid: spec.containers[0].resources.requests: Invalid value: '
     '"4Gi": must be less than or equal to memory limit', PermanentError, "InvalidPod"),
    (409, "AlreadyExists", 'pods "ark-flowers-r0000a1" already exists', TemporaryError, "Conflict"),
    (500, "InternalError", "etcdserver: request timed out", TemporaryError, "KubernetesUnavailable"),
    (429, "TooManyRequests", "too many requests, please try again later", TemporaryError, "KubernetesUnavailable"),
])
def test_api_errors_keep_the_clusters_message(status: int, reason: str, message: str, cls: type, code: str) -> None:
    err = api_error(status, reason, status_body(status, reason, message), "creating Pod ark-flowers-r0000a1")
    assert isinstance(err, cls) and err.code == code
    if cls is TemporaryError:
        assert not isinstance(err, PermanentError)
    assert err.message == f"Kubernetes API, creating Pod ark-flowers-r0000a1: {message}"


def test_an_error_without_a_status_body_keeps_what_there_is() -> None:
    assert api_error(502, "Bad Gateway", "", "listing Pods").message == "Kubernetes API, listing Pods: Bad Gateway"
    assert api_error(503, "", b"<html>down</html>", "listing Pods").message.endswith("<html>down</html>")
