"""deploy/kubernetes: `kubectl kustomize` renders the base and the Ingress overlay offline; every object passes
Kubernetes' own schemas (kubernetes-validate, strict, the newest release it ships); and the facts the platform
relies on hold: RBAC scoped to one namespace, 2+ gateways, the reconciler elects a leader through a Lease it may
use, secrets referenced (never inlined), every ARKSERVE_* variable a real setting, ports that match them."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from arkserve import settings
from tests.required import unavailable

DEPLOY = Path(__file__).parents[2] / "deploy" / "kubernetes"
K8S = kubernetes_validate.latest_version()
SECRET_VARS = {"ARKSERVE_MASTER_KEY", "ARKSERVE_DATABASE_URL"}
KNOWN_VARS = {env for _name, env, _default, _doc in settings.describe() if env} | {"ARKSERVE_MASTER_KEY"}


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("ARKSERVE_REQUIRE_KUBECTL", "kubectl not installed (apt-get install kubernetes-client)")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container_env(objs: list[dict[str, Any]], deployment: str,
                  name: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Deployment's container (the first, or the one named) and the environment it gets: ConfigMap entries
    (envFrom), then its own env."""
    pod = one(objs, "Deployment", deployment)["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if name is None or c["name"] == name)
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(one(objs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return container, env


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(DEPLOY / "base")


@pytest.fixture(scope="module")
def ingress() -> list[dict[str, Any]]:
    return render(DEPLOY / "overlays" / "ingress")


def test_every_object_passes_the_kubernetes_schemas(base: list[dict[str, Any]],
                                                    ingress: list[dict[str, Any]]) -> None:
    for obj in base + ingress:
        kubernetes_validate.validate(obj, K8S, strict=True)
    kinds = {o["kind"] for o in base}
    assert {"Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service", "ServiceAccount",
            "Role", "RoleBinding", "PodDisruptionBudget"} <= kinds
    assert "Ingress" in {o["kind"] for o in ingress}


def test_the_validation_catches_a_broken_object(base: list[dict[str, Any]]) -> None:  # the check above can fail
    broken = copy.deepcopy(one(base, "Deployment", "arkserve-gateway"))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8443"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S, strict=True)
    broken = copy.deepcopy(one(base, "Deployment", "arkserve-gateway"))
    broken["spec"]["template"]["spec"]["containers"][0]["envFrm"] = []  # a typo strict validation refuses
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S, strict=True)


def test_rbac_is_scoped_to_the_namespace_and_lets_the_reconciler_use_its_lease(base: list[dict[str, Any]]) -> None:
    assert not [o for o in base if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    namespaced = [o for o in base if o["kind"] not in ("Namespace",)]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"arkserve"}
    role = one(base, "Role", "arkserve-reconciler")
    binding = one(base, "RoleBinding", "arkserve-reconciler")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "arkserve-reconciler"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "arkserve-reconciler", "namespace": "arkserve"}]

    def allowed(group: str, resource: str, verb: str, name: str = "") -> bool:
        return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
                   and (not r.get("resourceNames") or name in r["resourceNames"]) for r in role["rules"])

    for verb in ("get", "list", "watch", "create", "delete"):
        assert allowed("", "pods", verb)
    assert allowed("", "pods/log", "get") and allowed("", "events", "list") and allowed("", "secrets", "create")
    assert allowed("", "persistentvolumeclaims", "get")
    assert allowed("coordination.k8s.io", "leases", "create")
    assert allowed("coordination.k8s.io", "leases", "update", "arkserve-reconciler")
    assert not allowed("coordination.k8s.io", "leases", "update", "another-lease")
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role["rules"])


def test_replicas_leader_election_and_exposure(base: list[dict[str, Any]], ingress: list[dict[str, Any]]) -> None:
    assert one(base, "Deployment", "arkserve-gateway")["spec"]["replicas"] >= 2
    rec = one(base, "Deployment", "arkserve-reconciler")
    assert rec["spec"]["replicas"] >= 1
    assert rec["spec"]["template"]["spec"]["serviceAccountName"] == "arkserve-reconciler"
    _, env = container_env(base, "arkserve-reconciler")
    assert env["ARKSERVE_LEADER_ELECTION"] == "kubernetes" and env["ARKSERVE_RUNTIME"] == "kubernetes"
    assert env["ARKSERVE_KUBE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    claim = one(base, "PersistentVolumeClaim", env["ARKSERVE_KUBE_VOLUME_CLAIM"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert one(base, "Service", "arkserve-gateway")["spec"]["type"] == "LoadBalancer"
    for objs in (base, ingress):  # the dispatcher beside each gateway reaches it on loopback: same settings
        gw, gw_env = container_env(objs, "arkserve-gateway", "gateway")
        disp, disp_env = container_env(objs, "arkserve-gateway", "dispatcher")
        assert disp["args"] == ["dispatcher"]
        for var in ("ARKSERVE_GATEWAY_TLS", "ARKSERVE_GATEWAY_HOST_PORT", "ARKSERVE_GATEWAY_ADDRESSING",
                    "ARKSERVE_BASE_DOMAIN", "ARKSERVE_DATA_DIR"):
            assert gw_env.get(var) == disp_env.get(var), var
        for c in (gw, disp):  # large asynchronous bodies are files in the data dir, shared with other Pods
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            assert mounts["data"] == gw_env["ARKSERVE_DATA_DIR"], c["name"]
    api, _ = container_env(base, "arkserve-api")  # the API's own health routes (seen answering in the image)
    assert (api["livenessProbe"]["httpGet"]["path"], api["readinessProbe"]["httpGet"]["path"]) == \
        ("/api/v1/healthz", "/api/v1/readyz")
    # the overlay: host addressing behind an Ingress, whose wildcard rule is the gateway's base domain
    _, genv = container_env(ingress, "arkserve-gateway")
    assert genv["ARKSERVE_GATEWAY_TLS"] == "0" and genv["ARKSERVE_GATEWAY_ADDRESSING"] == "host"
    rules = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"]
             for r in one(ingress, "Ingress", "arkserve")["spec"]["rules"]}
    assert rules[f"*.{genv['ARKSERVE_BASE_DOMAIN']}"] == "arkserve-gateway"
    assert not [v for v in one(ingress, "Deployment", "arkserve-gateway")["spec"]["template"]["spec"]["volumes"]
                if "secret" in v]  # no TLS Secret needed behind the Ingress
    assert {o["spec"]["template"]["spec"]["containers"][0]["image"] for o in ingress if o["kind"] == "Deployment"} \
        == {"registry.example.com/arkserve/arkserve:0.1.0"}


def test_secrets_are_referenced_not_inlined_and_every_variable_is_a_setting(base: list[dict[str, Any]]) -> None:
    secret = one(base, "Secret", "arkserve-secrets")
    config = one(base, "ConfigMap", "arkserve-config")
    assert not [k for k in config["data"] if k in SECRET_VARS or "KEY" in k or "PASSWORD" in k]
    ports = {"arkserve-api": "ARKSERVE_API_PORT", "arkserve-gateway": "ARKSERVE_GATEWAY_HOST_PORT",
             "arkserve-registry": "ARKSERVE_REGISTRY_PORT"}
    containers = [(d["metadata"]["name"], c["name"]) for d in base if d["kind"] == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"]]
    assert len(containers) == 5
    for name, cname in containers:
        container, env = container_env(base, name, cname)
        unknown = set(env) - KNOWN_VARS
        assert not unknown, f"{name}: not arkserve settings: {unknown}"
        for var in SECRET_VARS & set(env):
            ref = env[var]["secretKeyRef"]  # from the Secret, never a literal value
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        if name != "arkserve-registry":
            assert set(env) >= SECRET_VARS, f"{name} lacks the master key or the store"
        if name in ports and cname != "dispatcher":
            assert [p["containerPort"] for p in container["ports"]] == [int(env[ports[name]])]


def test_replicas_take_connections_only_from_the_gateway_and_the_reconciler(base: list[dict[str, Any]]) -> None:
    """The NetworkPolicy selects the Pods the runtime makes (their labels as kube_mapping writes them) and lets in
    exactly the gateway's and the reconciler's Pods (their templates' labels), none of the platform's other Pods."""
    from arkserve.runtimes.base import ReplicaSpec
    from arkserve.runtimes.kube_mapping import KubeTarget, pod_manifest

    policy = one(base, "NetworkPolicy", "arkserve-replicas")["spec"]
    assert policy["policyTypes"] == ["Ingress"]

    def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector["matchLabels"].items())

    replica = pod_manifest(ReplicaSpec(service="web", replica="r0000001", revision="rev1", image="img", command="x",
                                       port=8000), KubeTarget(namespace="arkserve", claim="", shared_root="/data"))
    assert matches(policy["podSelector"], replica["metadata"]["labels"])
    sources = [peer["podSelector"] for rule in policy["ingress"] for peer in rule["from"]]
    assert all(set(peer) == {"podSelector"} for rule in policy["ingress"] for peer in rule["from"])
    for deployment in ("arkserve-api", "arkserve-gateway", "arkserve-reconciler", "arkserve-registry"):
        labels = one(base, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
        assert any(matches(s, labels) for s in sources) is (deployment in ("arkserve-gateway", "arkserve-reconciler"))
        assert not matches(policy["podSelector"], labels)  # the platform's own Pods are not replicas
