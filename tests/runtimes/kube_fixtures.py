"""Pods, events and API errors shaped as a Kubernetes API server sends them, for the kubernetes runtime's tests.

Each Pod is JSON as ``GET /api/v1/namespaces/<ns>/pods/<name>`` answers it (camelCase, the fields a kubelet
and scheduler fill in), turned into the client's model with ``ApiClient.deserialize`` and back with
``sanitize_for_serialization``, which is what the runtime does with every object the client returns.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
from kubernetes import client

K8S_VERSION = kubernetes_validate.latest_version()  # the newest schemas the library ships (offline)

_API = client.ApiClient()


def as_client_returns(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """JSON -> the client's model (``V1Pod``, ``CoreV1Event``) -> the JSON dict the runtime reads."""
    model = _API.deserialize(json.dumps(obj), kind, "application/json")
    assert type(model).__name__ == kind, model
    return dict(_API.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]


def validate(obj: dict[str, Any]) -> None:
    """Fails with the schema's own words when ``obj`` is not a valid object of the current Kubernetes release."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise AssertionError(f"{obj.get('kind')} invalid for Kubernetes {K8S_VERSION} at {where}: {exc.message}") \
            from None


BASE_POD: dict[str, Any] = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {
        "name": "ark-flowers-r0000a1", "namespace": "arkserve", "uid": "5f0c8a3e-2b1d-4c7e-9a61-0d2f3b4c5e6f",
        "resourceVersion": "48213", "creationTimestamp": "2026-11-30T21:00:00Z",
        "labels": {"arkserve.io/managed": "true", "arkserve.io/service": "flowers",
                   "arkserve.io/replica": "r0000a1", "arkserve.io/revision": "3f2a9c1"},
        "annotations": {"arkserve.io/port": "8000"}},
    "spec": {
        "containers": [{"name": "app", "image": "127.0.0.1:5000/alice/flowers:1",
                        "command": ["/bin/sh", "-c", "python serve.py"],
                        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "2", "memory": "4Gi"},
                                      "requests": {"cpu": "2", "memory": "4Gi"}},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "imagePullPolicy": "Always"}],
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 10, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "nodeName": "node-1", "schedulerName": "default-scheduler",
        "priority": 0, "enableServiceLinks": False, "preemptionPolicy": "PreemptLowerPriority",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}]},
    "status": {"phase": "Pending", "qosClass": "Guaranteed", "hostIP": "10.0.0.11",
               "hostIPs": [{"ip": "10.0.0.11"}], "startTime": "2026-11-30T21:00:01Z"},
}


def pod(phase: str, *, container_state: dict[str, Any] | None = None, pod_ip: str = "",
        conditions: list[dict[str, Any]] | None = None, image_id: str = "", **status: Any) -> dict[str, Any]:
    """``BASE_POD`` in ``phase``, its container in ``container_state``; returned as the client returns it."""
    raw = copy.deepcopy(BASE_POD)
    raw["status"]["phase"] = phase
    if pod_ip:
        raw["status"].update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    if conditions is not None:
        raw["status"]["conditions"] = conditions
    if container_state is not None:
        raw["status"]["containerStatuses"] = [{
            "name": "app", "state": container_state, "lastState": {}, "ready": False, "restartCount": 0,
            "image": "127.0.0.1:5000/alice/flowers:1", "imageID": image_id, "started": "running" in container_state,
            **({"containerID": "containerd://9d1c0b7e"} if image_id else {})}]
    raw["status"].update(status)
    return as_client_returns("V1Pod", raw)


def event(reason: str, message: str, at: str, kind: str = "Warning") -> dict[str, Any]:
    """A kubelet event about the Pod, as ``GET /api/v1/namespaces/<ns>/events`` lists it."""
    return as_client_returns("CoreV1Event", {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"ark-flowers-r0000a1.{abs(hash(message)) % 10**12:x}", "namespace": "arkserve"},
        "involvedObject": {"kind": "Pod", "namespace": "arkserve", "name": "ark-flowers-r0000a1",
                           "uid": BASE_POD["metadata"]["uid"], "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": reason, "message": message, "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": at, "lastTimestamp": at, "count": 1, "type": kind})


def status_body(code: int, reason: str, message: str) -> str:
    """The ``Status`` object the API server sends with an error answer."""
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code})
