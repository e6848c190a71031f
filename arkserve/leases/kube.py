"""The Kubernetes lease: a ``coordination.k8s.io/v1`` ``Lease`` object, through the official client (imported
when used), as Kubernetes' own controllers elect their leaders.

Compare-and-set is the API server's: every replace carries the ``resourceVersion`` read, and a stale one is
refused (409 Conflict), so of two candidates only one takes the Lease. Expiry is judged the way client-go
does, without trusting clocks across nodes: a candidate takes the Lease over once it has seen the *same*
``resourceVersion`` (no renewal) for ``leaseDurationSeconds`` of its own monotonic clock, or at once when it
is free (no holder) or its ``renewTime`` is older than twice the duration (a long-dead holder).
``leaseTransitions`` is the fencing token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from arkserve.errors import RuntimeUnavailable, TemporaryError
from arkserve.leases.base import Holding

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace(default: str = "default") -> str:
    """The namespace this Pod runs in (its service account's), else ``default``."""
    try:
        return NAMESPACE_FILE.read_text().strip() or default
    except OSError:
        return default


def coordination_api(kubeconfig: str = "") -> Any:
    """A ``CoordinationV1Api``: in-cluster configuration inside a Pod, else the kubeconfig (path or default)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise RuntimeUnavailable("the Kubernetes lease needs the 'kubernetes' Python package") from None
    try:
        if not kubeconfig and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(config_file=kubeconfig or None)  # type: ignore[no-untyped-call]
    except config.ConfigException as exc:
        raise RuntimeUnavailable(f"no Kubernetes configuration for the lease: {exc}") from None
    return client.CoordinationV1Api()


class KubeLease:
    name = "kubernetes"

    def __init__(self, api: Any, namespace: str, lease: str = "arkserve-reconciler",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api, self.namespace, self.lease, self.clock = api, namespace, lease, clock
        self._observed: tuple[str, float] | None = None  # (resourceVersion, monotonic time it was first seen)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status in (404, 409):
                raise
            raise TemporaryError(f"Kubernetes refused to {what} Lease {self.namespace}/{self.lease}: "
                                 f"{exc.status} {exc.reason}", code="LeaseUnavailable") from None
        except OSError as exc:  # urllib3's connection errors are OSErrors underneath
            raise TemporaryError(f"Kubernetes API unreachable for the lease: {exc.__class__.__name__}",
                                 code="LeaseUnavailable") from None

    def _read(self) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call("read", self.api.read_namespaced_lease, self.lease, self.namespace)
        except ApiException:  # 404: none yet
            return None

    def _expired(self, obj: Any) -> bool:
        spec = obj.spec
        if not spec.holder_identity:
            return True
        duration = float(spec.lease_duration_seconds or 0)
        version, now = str(obj.metadata.resource_version), self.clock()
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, now)
        renewed = spec.renew_time or spec.acquire_time
        if renewed is not None and datetime.now(UTC) - renewed > timedelta(seconds=2 * duration):
            return True
        return now - self._observed[1] >= duration

    def acquire(self, holder: str, duration_s: float) -> Holding:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        now = datetime.now(UTC)
        obj = self._read()
        if obj is None:
            body = client.V1Lease(
                api_version="coordination.k8s.io/v1", kind="Lease",
                metadata=client.V1ObjectMeta(name=self.lease, namespace=self.namespace,
                                             labels={"app.kubernetes.io/part-of": "arkserve"}),
                spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=round(duration_s),
                                        acquire_time=now, renew_time=now, lease_transitions=1))
            try:
                self._call("create", self.api.create_namespaced_lease, self.namespace, body)
                return Holding(holder, 1, duration_s)
            except ApiException:  # 409: another candidate created it first
                return self._holding(self._read())
        spec = obj.spec
        if spec.holder_identity == holder:
            spec.renew_time, spec.lease_duration_seconds = now, round(duration_s)
        elif self._expired(obj):
            spec.holder_identity, spec.acquire_time, spec.renew_time = holder, now, now
            spec.lease_duration_seconds = round(duration_s)
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        else:
            return self._holding(obj)
        try:  # obj carries the resourceVersion we read: a write since then makes this a 409
            done = self._call("replace", self.api.replace_namespaced_lease, self.lease, self.namespace, obj)
        except ApiException:
            return self._holding(self._read())
        return self._holding(done)

    def _holding(self, obj: Any | None) -> Holding:
        if obj is None:
            return Holding("", 0, 0.0)
        spec = obj.spec
        return Holding(spec.holder_identity or "", int(spec.lease_transitions or 0),
                       float(spec.lease_duration_seconds or 0))

    def release(self, holder: str, token: int) -> None:
        from kubernetes.client.exceptions import ApiException

        obj = self._read()
        if obj is None or obj.spec.holder_identity != holder or int(obj.spec.lease_transitions or 0) != token:
            return
        obj.spec.holder_identity = None
        obj.spec.renew_time = datetime.now(UTC)
        try:
            self._call("release", self.api.replace_namespaced_lease, self.lease, self.namespace, obj)
        except ApiException:  # changed meanwhile: no longer ours to release
            return
