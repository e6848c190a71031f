"""The kubernetes runtime's request sequence, through the real client, against a scripted loopback endpoint.

Not a cluster and not the contract (that is ``test_contract.py`` on a live cluster): a small HTTP server that
keeps Pods and Secrets as JSON and moves each new Pod through the statuses a test scripts (what a scheduler
and kubelet would write). It checks what the shell sends (the Pod and Secret bodies, validated against the
current release's schemas as they arrive; the delete's grace period; the label selector) and what it does
with each answer (waits for Running, removes a Pod that cannot pull, leaves an unschedulable one queued,
follows the log, waits for the Pod to be gone, drops the pull Secret with the last Pod).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from arkserve.errors import PermanentError, TemporaryError
from arkserve.logs import log_dir_for, read_logs
from arkserve.runtimes.base import ReplicaPhase, ReplicaSpec
from arkserve.runtimes.kube_mapping import KubeTarget
from arkserve.runtimes.kubernetes import KubernetesRuntime
from tests.runtimes.conftest import wait_until

from .kube_fixtures import status_body, validate

NS = "/api/v1/namespaces/arkserve"
RUNNING = {"phase": "Running", "podIP": "10.244.1.17",
           "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "image": "x", "imageID": "x",
                                  "state": {"running": {"startedAt": "2026-11-30T21:00:07Z"}}}]}
UNSCHEDULABLE = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                     "reason": "Unschedulable",
                                                     "message": "0/3 nodes are available: 3 Insufficient cpu."}]}


def _waiting(reason: str, message: str) -> dict[str, Any]:
    return {"phase": "Pending", "containerStatuses": [{"name": "app", "ready": False, "restartCount": 0, "image": "x",
                                                       "imageID": "", "state": {"waiting": {"reason": reason,
                                                                                             "message": message}}}]}


class Cluster:
    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []  # statuses the next Pod goes through, one per read
        self.scripts: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[str] = []
        self.log = b""
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    cluster: Cluster

    def _send(self, code: int, obj: Any) -> None:
        body = (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _missing(self, what: str) -> None:
        self._send(404, json.loads(status_body(404, "NotFound", f"{what} not found")))

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))

    def _route(self, method: str) -> None:
        c, url = self.cluster, urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        c.seen.append(f"{method} {url.path}" + (f" {query}" if query else ""))
        kind, _, name = url.path.removeprefix(NS + "/").partition("/")
        with c.lock:
            if kind == "pods" and name.endswith("/log"):
                return self._send(200, c.log)
            if kind == "events":
                return self._send(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": c.events})
            store = c.pods if kind == "pods" else c.secrets
            if method == "POST":
                obj = self._body()
                validate(obj)  # what the runtime sends, against the current release's schemas
                if obj["metadata"]["name"] in store:
                    return self._send(409, json.loads(status_body(409, "AlreadyExists", "already exists")))
                obj["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp="2026-11-30T21:00:00Z")
                if kind == "pods":
                    obj["status"] = {"phase": "Pending"}
                    c.scripts[obj["metadata"]["name"]], c.script = c.script, []
                store[obj["metadata"]["name"]] = obj
                return self._send(201, obj)
            if method == "PUT":
                if name not in store:
                    return self._missing(name)
                obj = self._body()
                validate(obj)
                store[name] = obj
                return self._send(200, obj)
            if method == "DELETE":
                if store.pop(name, None) is None:
                    return self._missing(name)
                return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            if name:
                if name not in store:
                    return self._missing(name)
                pod = store[name]
                if kind == "pods" and c.scripts.get(name):
                    pod["status"] = c.scripts[name].pop(0)
                return self._send(200, pod)
            wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if p)
            items = [o for o in store.values() if wanted.items() <= o["metadata"].get("labels", {}).items()]
            return self._send(200, {"kind": "PodList" if kind == "pods" else "SecretList", "apiVersion": "v1",
                                    "metadata": {}, "items": items})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, KubernetesRuntime]]:
    c = Cluster()
    handler = type("Handler", (_Handler,), {"cluster": c})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "t", "user": {"token": "t"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}]}))
    target = KubeTarget(namespace="arkserve", claim="arkserve-data", shared_root=str(tmp_path), grace_s=10)
    rt = KubernetesRuntime(tmp_path / "data", target, kubeconfig=str(config), start_timeout_s=5)
    yield c, rt
    rt.close()
    server.shutdown()
    server.server_close()
    thread.join()


SPEC = ReplicaSpec(service="flowers", replica="r0000a1", revision="3f2a9c1", image="127.0.0.1:5000/alice/flowers:1",
                   command="python serve.py", port=8000, cpus=1, memory_mb=512, pull_token="tok.en.sig")


def test_start_runs_the_pod_with_its_pull_secret_follows_the_log_and_stop_removes_both(
        cluster: tuple[Cluster, KubernetesRuntime], tmp_path: Path) -> None:
    c, rt = cluster
    c.script = [{"phase": "Pending"}, _waiting("ContainerCreating", ""), RUNNING]
    c.log = b"2026-11-30T21:00:07.5Z listening\n2026-11-30T21:00:08Z got SIGTERM\n"
    info = rt.start(SPEC)
    assert (info.phase, info.host, info.port) == (ReplicaPhase.RUNNING, "10.244.1.17", 8000)
    secret = c.secrets["ark-pull-flowers"]
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert auths["127.0.0.1:5000"]["password"] == "tok.en.sig"
    assert c.pods["ark-flowers-r0000a1"]["spec"]["imagePullSecrets"] == [{"name": "ark-pull-flowers"}]
    assert c.seen.index("PUT /api/v1/namespaces/arkserve/secrets/ark-pull-flowers") < \
        c.seen.index("POST /api/v1/namespaces/arkserve/pods")  # the token is in place before the kubelet pulls
    assert rt.start(SPEC).runtime_id == info.runtime_id  # idempotent: no second Pod
    assert [i.replica for i in rt.list()] == ["r0000a1"]
    logs = log_dir_for(tmp_path / "data")
    wait_until(lambda: len(read_logs(logs, "flowers")) == 2, what="the Pod's log in the file")
    rt.stop("flowers", "r0000a1", grace_s=2.5)
    deletes = [s for s in c.seen if s.startswith("DELETE")]
    assert deletes == ["DELETE /api/v1/namespaces/arkserve/pods/ark-flowers-r0000a1 {'gracePeriodSeconds': '3'}",
                       "DELETE /api/v1/namespaces/arkserve/secrets/ark-pull-flowers"]
    assert rt.inspect("flowers", "r0000a1") is None and not c.secrets
    assert [line.text for line in read_logs(logs, "flowers")] == ["listening", "got SIGTERM"]


def test_an_image_the_registry_lacks_removes_the_pod_and_is_permanent(
        cluster: tuple[Cluster, KubernetesRuntime]) -> None:
    c, rt = cluster
    c.script = [{"phase": "Pending"}, _waiting("ErrImagePull", 'failed to pull and unpack image '
                                                               '"127.0.0.1:5000/alice/flowers:1": not found')]
    with pytest.raises(PermanentError, match="not found") as err:
        rt.start(SPEC)
    assert err.value.code == "ImageNotFound"
    assert not c.pods and "DELETE /api/v1/namespaces/arkserve/pods/ark-flowers-r0000a1 " \
        "{'gracePeriodSeconds': '0'}" in c.seen


def test_a_back_off_reads_the_events_for_why(cluster: tuple[Cluster, KubernetesRuntime]) -> None:
    c, rt = cluster
    c.script = [_waiting("ImagePullBackOff", 'Back-off pulling image "127.0.0.1:5000/alice/flowers:1"')]
    c.events = [{"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e1", "namespace": "arkserve"},
                 "involvedObject": {"kind": "Pod", "name": "ark-flowers-r0000a1"}, "reason": "Failed",
                 "type": "Warning", "lastTimestamp": "2026-11-30T21:00:05Z",
                 "message": 'Failed to pull image "127.0.0.1:5000/alice/flowers:1": 401 Unauthorized'}]
    with pytest.raises(PermanentError, match="401 Unauthorized") as err:
        rt.start(SPEC)
    assert err.value.code == "ImagePullDenied" and not c.pods
    assert any(s.startswith("GET /api/v1/namespaces/arkserve/events") and "involvedObject.name=ark-flowers-r0000a1"
               in s for s in c.seen)


def test_an_unschedulable_pod_stays_queued_and_a_later_start_picks_it_up(
        cluster: tuple[Cluster, KubernetesRuntime]) -> None:
    c, rt = cluster
    c.script = [{"phase": "Pending"}, UNSCHEDULABLE, UNSCHEDULABLE, RUNNING]
    with pytest.raises(TemporaryError, match="3 Insufficient cpu") as err:
        rt.start(SPEC)
    assert not isinstance(err.value, PermanentError) and err.value.code == "Unschedulable"
    assert "ark-flowers-r0000a1" in c.pods  # still queued at the scheduler
    with pytest.raises(TemporaryError, match="Insufficient cpu"):
        rt.start(SPEC)  # the reconciler asks again: still waiting
    info = rt.start(SPEC)  # scheduled since: the same Pod, now running
    assert info.phase is ReplicaPhase.RUNNING
    assert sum(1 for s in c.seen if s == "POST /api/v1/namespaces/arkserve/pods") == 1


def test_a_pod_that_never_runs_is_removed_after_the_start_timeout(cluster: tuple[Cluster, KubernetesRuntime]) -> None:
    c, rt = cluster
    rt.start_timeout_s = 0.5
    c.script = [_waiting("ErrImagePull", "dial tcp 127.0.0.1:5000: connect: connection refused")] * 1000
    with pytest.raises(TemporaryError, match=r"not running after 0\.5 s: .*connection refused") as err:
        rt.start(SPEC)
    assert not isinstance(err.value, PermanentError) and not c.pods
