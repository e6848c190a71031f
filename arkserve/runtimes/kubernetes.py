"""The Kubernetes runtime: one Pod per replica in one namespace (the official ``kubernetes`` client).

The I/O shell around two pure modules: :mod:`kube_mapping` (a spec -> the Pod and its pull Secret) and
:mod:`kube_status` (a Pod -> :class:`ReplicaInfo`, why a Pod will not run, API errors -> the error tree).
The client is imported and configured on first use — a kubeconfig file when one is set, else the
in-cluster service account — so the package loads (and the runtime can be built) without it.

``start`` creates the pull Secret (from ``spec.pull_token``, refreshed on every start, so the token is fresh
when the kubelet pulls) and the Pod, then waits until it runs (its Pod IP is the replica's host, the
container port its port), exits, or cannot run: an image the registry lacks or refuses removes the Pod and
raises ``PermanentError`` (``ImageNotFound``/``ImagePullDenied``); a Pod the scheduler cannot place stays
queued and ``start`` raises ``TemporaryError`` (``Unschedulable``, the scheduler's words), so the reconciler
keeps the replica pending and asks again. ``stop`` deletes the Pod with the grace period (the kubelet sends
SIGTERM, then SIGKILL) and waits until it is gone. Output goes to the log files as on the other runtimes
(:mod:`kube_logs`).
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import urllib3

from arkserve.errors import ArkserveError, RuntimeUnavailable, TemporaryError
from arkserve.logs import DEFAULT_MAX_BYTES, LogWriter, log_dir_for, log_path, rotate
from arkserve.runtimes.base import ReplicaInfo, ReplicaPhase, ReplicaSpec, object_name
from arkserve.runtimes.kube_logs import PodFollower
from arkserve.runtimes.kube_mapping import (
    CONTAINER,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_SERVICE,
    KubeTarget,
    pod_manifest,
    pull_secret,
    pull_secret_name,
    selector,
)
from arkserve.runtimes.kube_status import api_error, pod_info, pod_problem

T = TypeVar("T")
Pod = dict[str, Any]


class _Gone(Exception):
    """A 404 from the API server (the caller decides whether that is an answer or an error)."""


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, data_dir: Path, target: KubeTarget, *, kubeconfig: str = "", start_timeout_s: float = 600.0,
                 log_max_bytes: int = DEFAULT_MAX_BYTES, request_timeout_s: float = 30.0) -> None:
        self.log_dir = log_dir_for(Path(data_dir))
        self.target, self.kubeconfig, self.start_timeout_s = target, kubeconfig, start_timeout_s
        self.log_max_bytes, self.request_timeout_s = log_max_bytes, request_timeout_s
        self._api_client: Any = None
        self._core: Any = None
        self._exc: Any = None  # kubernetes.client.ApiException, once imported
        self._lock = threading.Lock()
        self._followers: dict[str, PodFollower] = {}

    # ------------------------------------------------------------------------------ the client boundary
    @property
    def core(self) -> Any:
        """``CoreV1Api``, configured on first use; ``RuntimeUnavailable`` when no configuration can be loaded."""
        with self._lock:
            if self._core is None:
                client = importlib.import_module("kubernetes.client")
                config = importlib.import_module("kubernetes.config")
                try:
                    if self.kubeconfig:
                        api_client = config.new_client_from_config(config_file=str(Path(self.kubeconfig).expanduser()))
                    else:
                        cfg = client.Configuration()
                        config.load_incluster_config(client_configuration=cfg)
                        api_client = client.ApiClient(cfg)
                except Exception as exc:  # ConfigException, a missing or broken file
                    where = self.kubeconfig or "the in-cluster service account"
                    raise RuntimeUnavailable(f"Kubernetes: cannot load the configuration from {where}: {exc}") from exc
                self._exc, self._api_client = client.ApiException, api_client
                self._core = client.CoreV1Api(api_client)
            return self._core

    def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call in the platform's words: 404 -> ``_Gone``; other answers -> ``api_error``; no answer ->
        ``RuntimeUnavailable``."""
        kwargs.setdefault("_request_timeout", self.request_timeout_s)
        try:
            return fn(*args, **kwargs)
        except ArkserveError:
            raise
        except Exception as exc:
            if self._exc is not None and isinstance(exc, self._exc):
                if exc.status == 404:
                    raise _Gone(doing) from exc
                raise api_error(int(exc.status or 0), str(exc.reason or ""), exc.body, doing) from exc
            if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
                raise RuntimeUnavailable(f"Kubernetes API unreachable while {doing}: {exc}") from exc
            raise TemporaryError(f"Kubernetes API, {doing}: an answer the client cannot read: {exc}",
                                 code="KubernetesUnavailable") from exc

    def _send(self, doing: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A call whose answer we do not read (create, replace, delete): the body is drained, not parsed, so a
        ``Status`` where the client's model expects the object (or the other way round) is no error."""
        resp = self._call(doing, fn, *args, _preload_content=False, **kwargs)
        with suppress(Exception):
            resp.data  # noqa: B018 - drains the body, which hands the connection back to the pool

    def _dict(self, obj: Any) -> Pod:
        return dict(self._api_client.sanitize_for_serialization(obj))

    def _read(self, name: str) -> Pod | None:
        core = self.core
        try:
            pod = self._dict(self._call(f"reading Pod {name}", core.read_namespaced_pod, name, self.target.namespace))
        except _Gone:
            return None
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(LABEL_MANAGED) != "true" or labels.get(LABEL_INSTANCE, "") != self.target.instance:
            return None
        return pod

    # ------------------------------------------------------------------------------ logs
    def _follow(self, pod: Pod, info: ReplicaInfo) -> None:
        if info.phase is ReplicaPhase.CREATED:
            return  # no container output before it runs
        name = pod["metadata"]["name"]
        with self._lock:
            old = self._followers.get(info.runtime_id)
            if old is not None and (old.is_alive() or info.phase is not ReplicaPhase.RUNNING):
                return
            writer = LogWriter(log_path(self.log_dir, info.service, info.replica), info.replica, self.log_max_bytes)
            core, ns = self._core, self.target.namespace

            def open_stream(since: int | None) -> Any:
                kw: dict[str, Any] = {"since_seconds": since} if since else {}
                return core.read_namespaced_pod_log(name, ns, container=CONTAINER, follow=True, timestamps=True,
                                                    _preload_content=False, **kw)

            follower = PodFollower(name, writer, open_stream)
            self._followers[info.runtime_id] = follower
        follower.start()

    # ------------------------------------------------------------------------------ the contract
    def _put_pull_secret(self, spec: ReplicaSpec) -> None:
        secret = pull_secret(spec, self.target)
        if secret is None:
            return
        core, ns, name = self.core, self.target.namespace, pull_secret_name(spec.service)
        try:
            self._send(f"replacing Secret {name}", core.replace_namespaced_secret, name, ns, secret)
        except _Gone:
            self._send(f"creating Secret {name}", core.create_namespaced_secret, ns, secret)

    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        manifest = pod_manifest(spec, self.target)  # PermanentError for a mount off the shared volume
        name = manifest["metadata"]["name"]
        existing = self._read(name)
        info = pod_info(existing) if existing is not None else None
        if existing is not None and info is not None and info.phase is ReplicaPhase.EXITED:
            self._delete(name, 0.0)  # a finished Pod under the same name: make room for a new one
            existing = None
        if existing is None:
            self._put_pull_secret(spec)
            rotate(log_path(self.log_dir, spec.service, spec.replica))
            core = self.core
            try:
                self._send(f"creating Pod {name}", core.create_namespaced_pod, self.target.namespace, manifest)
            except _Gone as exc:
                raise api_error(404, "NotFound", f"namespace {self.target.namespace} not found",
                                f"creating Pod {name}") from exc
        return self._wait_running(name, spec.image, existing)

    def _wait_running(self, name: str, image: str, pod: Pod | None = None) -> ReplicaInfo:
        """Until the Pod runs or exits; ``pod``: what was just read (an existing Pod), not read again."""
        deadline, pause, last = time.monotonic() + self.start_timeout_s, 0.1, ""
        while True:
            pod = pod or self._read(name)
            if pod is None:
                raise TemporaryError(f"Pod {name} disappeared while starting", code="Conflict")
            info = pod_info(pod)
            assert info is not None  # we made it, with our labels
            if info.phase is ReplicaPhase.EXITED or (info.phase is ReplicaPhase.RUNNING and info.host):
                self._follow(pod, info)
                return info
            problem = pod_problem(pod)
            if problem is not None and problem.code == "ImagePullFailed":  # the events may say why
                problem = pod_problem(pod, self._events(name))
            if problem is not None and problem.permanent:
                self._delete(name, 0.0)
                raise problem.error()
            if problem is not None and problem.code == "Unschedulable":
                raise problem.error()  # the Pod stays queued; the reconciler keeps the replica pending
            last = problem.message if problem is not None else last
            if time.monotonic() > deadline:
                self._delete(name, 0.0)
                raise TemporaryError(f"Pod {name} not running after {self.start_timeout_s:g} s"
                                     + (f": {last}" if last else f" (image {image})"), code="StartTimeout")
            time.sleep(pause)
            pause, pod = min(pause * 1.5, 1.0), None

    def _events(self, name: str) -> list[Pod]:
        core = self.core
        try:
            found = self._call(f"reading the events of Pod {name}", core.list_namespaced_event, self.target.namespace,
                               field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}")
        except (_Gone, ArkserveError):  # events are a hint: without them the kubelet's own message stands
            return []
        return [self._dict(e) for e in found.items]

    def _delete(self, name: str, grace_s: float) -> bool:
        """Delete the Pod and wait until it is gone; False when there was none."""
        core, ns, grace = self.core, self.target.namespace, max(0, math.ceil(grace_s))
        try:
            self._send(f"deleting Pod {name}", core.delete_namespaced_pod, name, ns, grace_period_seconds=grace)
        except _Gone:
            return False
        deadline = time.monotonic() + grace + 60
        while self._read(name) is not None:
            if time.monotonic() > deadline:
                raise TemporaryError(f"Pod {name} still terminating {grace + 60} s after its deletion",
                                     code="KubernetesUnavailable")
            time.sleep(0.1)
        return True

    def _forget_secret(self, service: str) -> None:
        """The service's pull Secret goes with its last Pod."""
        core, ns = self.core, self.target.namespace
        pods = self._call("listing Pods", core.list_namespaced_pod, ns,
                          label_selector=selector(self.target.instance, **{LABEL_SERVICE: service}))
        if not pods.items:
            with suppress(_Gone):
                self._send("deleting a pull Secret", core.delete_namespaced_secret, pull_secret_name(service), ns)

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        name = object_name(service, replica)
        pod = self._read(name)
        if pod is None:
            return
        self._delete(name, grace_s)
        with self._lock:
            follower = self._followers.pop(str(pod["metadata"].get("uid") or ""), None)
        if follower is not None:
            follower.join(timeout=5.0)  # the last lines before the Pod went
        self._forget_secret(service)

    def list(self) -> list[ReplicaInfo]:
        core = self.core
        try:
            found = self._call("listing Pods", core.list_namespaced_pod, self.target.namespace,
                               label_selector=selector(self.target.instance))
        except _Gone as exc:
            raise api_error(404, "NotFound", f"namespace {self.target.namespace} not found", "listing Pods") from exc
        out = []
        for item in found.items:
            pod = self._dict(item)
            info = pod_info(pod)
            if info is not None:
                self._follow(pod, info)
                out.append(info)
        return out

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        pod = self._read(object_name(service, replica))
        info = pod_info(pod) if pod is not None else None
        if pod is not None and info is not None:
            self._follow(pod, info)
        return info

    def close(self) -> None:
        with self._lock:
            followers, self._followers = list(self._followers.values()), {}
        for f in followers:
            f.close()
        for f in followers:
            f.join(timeout=2.0)
        with self._lock:
            api_client, self._api_client, self._core = self._api_client, None, None
        if api_client is not None:
            with suppress(Exception):
                api_client.close()

