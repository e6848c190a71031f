"""The kubernetes runtime's I/O shell where no cluster is needed: configuration it cannot load, an API server
that does not answer, and an API server's error answers arriving through the real client.

The error answers come from a loopback HTTP server that sends the ``Status`` bodies an API server sends; it
stands in for nothing else (no Pod ever runs). The runtime against a real cluster is the contract suite
(``test_contract.py`` with ``ARKSERVE_TEST_KUBECONFIG``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from arkserve.errors import PermanentError, RuntimeUnavailable, TemporaryError
from arkserve.logs import LogWriter, log_path, read_logs
from arkserve.runtimes.base import ReplicaSpec
from arkserve.runtimes.factory import make_runtime
from arkserve.runtimes.kube_logs import PodFollower
from arkserve.settings import RuntimeSettings
from tests.live import free_port

from .kube_fixtures import status_body

QUOTA = ('pods "ark-flowers-r0000a1" is forbidden: exceeded quota: compute, requested: requests.nvidia.com/gpu=2, '
         "used: requests.nvidia.com/gpu=7, limited: requests.nvidia.com/gpu=8")
RBAC = 'pods is forbidden: User "system:serviceaccount:arkserve:reconciler" cannot list resource "pods"'


class _Answers(BaseHTTPRequestHandler):
    """404 for reading a Pod, 403 quota for creating one, 403 RBAC for listing: Status bodies, as the API server."""

    seen: list[str] = []

    def _send(self, code: int, reason: str, message: str) -> None:
        body = status_body(code, reason, message).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        if self.path.startswith("/api/v1/namespaces/arkserve/pods/"):
            self._send(404, "NotFound", 'pods "ark-flowers-r0000a1" not found')
        else:
            self._send(403, "Forbidden", RBAC)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        pod = json.loads(self.rfile.read(length))
        self.seen.append(f"POST {self.path} {pod['metadata']['name']}")
        self._send(403, "Forbidden", QUOTA)

    def log_message(self, *args: object) -> None:
        pass


def _kubeconfig(path: Path, port: int) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "t", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "arkserve"}}]}))
    return path


@pytest.fixture
def answering(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    _Answers.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _kubeconfig(tmp_path / "kubeconfig", server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def _runtime(tmp_path: Path, kubeconfig: Path):  # type: ignore[no-untyped-def]
    return make_runtime("kubernetes", tmp_path / "data",
                        kube=RuntimeSettings(kind="kubernetes", kubeconfig=str(kubeconfig), kube_namespace="arkserve"))


SPEC = ReplicaSpec(service="flowers", replica="r0000a1", revision="3f2a9c1", image="arkserve-test/busybox:1",
                   command="httpd -f -p $PORT", port=8000, gpus=2)


def test_the_runtime_is_built_without_a_cluster_and_says_when_it_has_no_configuration(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, tmp_path / "no-such-kubeconfig")
    assert rt.name == "kubernetes"
    with pytest.raises(RuntimeUnavailable, match=r"cannot load the configuration from .*no-such-kubeconfig"):
        rt.list()
    rt.close()


def test_an_api_server_that_does_not_answer_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, _kubeconfig(tmp_path / "kubeconfig", free_port()))
    with pytest.raises(RuntimeUnavailable, match="Kubernetes API unreachable while listing Pods"):
        rt.list()
    with pytest.raises(RuntimeUnavailable):
        rt.inspect("flowers", "r0000a1")
    rt.close()


def test_a_quota_refusal_is_a_wait_with_the_clusters_words(tmp_path: Path, answering: Path) -> None:
    rt = _runtime(tmp_path, answering)
    with pytest.raises(TemporaryError) as err:
        rt.start(SPEC)
    assert not isinstance(err.value, PermanentError) and err.value.code == "QuotaExceeded"
    assert err.value.message == f"Kubernetes API, creating Pod ark-flowers-r0000a1: {QUOTA}"
    assert "POST /api/v1/namespaces/arkserve/pods ark-flowers-r0000a1" in _Answers.seen
    rt.close()


def test_rbac_refusal_is_permanent_with_the_clusters_words_and_a_missing_pod_is_none(
        tmp_path: Path, answering: Path) -> None:
    rt = _runtime(tmp_path, answering)
    with pytest.raises(PermanentError, match="cannot list resource") as err:
        rt.list()
    assert err.value.code == "KubernetesForbidden"
    assert rt.inspect("flowers", "r0000a1") is None  # 404: no such replica, not an error
    rt.stop("flowers", "r0000a1", grace_s=0)  # idempotent: nothing to stop
    seen = [unquote(s) for s in _Answers.seen]  # adoption lists by the platform's label
    assert "GET /api/v1/namespaces/arkserve/pods?labelSelector=arkserve.io/managed=true" in seen, seen
    rt.close()


class _Stream:
    """What ``read_namespaced_pod_log(..., _preload_content=False)`` returns: a urllib3 response, in chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.closed = chunks, False

    def stream(self, amt: int, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


def test_pod_output_goes_to_the_log_file_once_across_an_adoption(tmp_path: Path) -> None:
    """The log API's RFC 3339 nanosecond stamps, lines split across chunks; a second follower (the runtime of a
    restarted reconciler) asks for the seconds since the file's last line and writes only what is newer."""
    log_dir = tmp_path / "logs"
    path = log_path(log_dir, "flowers", "r0000a1")
    asked: list[int | None] = []
    first = [b"2026-11-30T21:00:07.123456789Z listening\n2026-11-30T21:00:08.000000001Z got ",
             b"request 1\n2026-11-30T21:00:09.5Z got request 2"]
    again = [b"2026-11-30T21:00:08.000000001Z got request 1\n2026-11-30T21:00:09.5Z got request 2\n",
             b"2026-11-30T21:00:10.25Z got SIGTERM\n"]
    for chunks in (first, again):
        def open_stream(since: int | None, chunks: list[bytes] = chunks) -> _Stream:
            asked.append(since)
            return _Stream(chunks)

        follower = PodFollower("ark-flowers-r0000a1", LogWriter(path, "r0000a1"), open_stream)
        follower.start()
        follower.join(timeout=5)
    assert [line.text for line in read_logs(log_dir, "flowers")] == [
        "listening", "got request 1", "got request 2", "got SIGTERM"]
    assert asked[0] is None and asked[1] is not None and asked[1] >= 1
