"""Typed settings, loaded once at the edge and passed down.

Precedence: command-line flags > environment (``ARKSERVE_*``) > config file
(``<data_dir>/config.yaml`` or ``ARKSERVE_CONFIG``) > defaults. Each field
documents itself (``doc``, ``env``); ``docs/configuration.md`` is generated from
these declarations and a test keeps it in sync. No module reads ``os.environ``
at import time: callers hand :func:`load` the environment they want honoured.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from arkserve.errors import ValidationFailed


def _setting(default: Any, doc: str, env: str | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "env": env})


@dataclass(frozen=True)
class StoreSettings:
    database_url: str = _setting(
        "", "SQLAlchemy URL of the store. Empty: SQLite at <data_dir>/arkserve.db. "
        "PostgreSQL: postgresql://user:pass@host/db.", "ARKSERVE_DATABASE_URL")
    busy_timeout_ms: int = _setting(5000, "SQLite busy timeout in milliseconds.", "ARKSERVE_SQLITE_BUSY_TIMEOUT_MS")


@dataclass(frozen=True)
class ApiSettings:
    host: str = _setting("127.0.0.1", "Address the REST API and console listen on.", "ARKSERVE_API_HOST")
    port: int = _setting(7780, "Port of the REST API and console.", "ARKSERVE_API_PORT")
    public_url: str = _setting("", "URL clients use to reach the API (default http://<host>:<port>).",
                               "ARKSERVE_API_PUBLIC_URL")
    session_ttl_s: int = _setting(8 * 3600, "Lifetime of a console login session, seconds.",
                                  "ARKSERVE_SESSION_TTL_S")
    secure_cookies: bool = _setting(False, "Mark session cookies Secure (enable when the console is served "
                                    "over HTTPS).", "ARKSERVE_SECURE_COOKIES")
    clock_skew_s: int = _setting(900, "Accepted clock skew of signed requests, seconds (spec: 15 min).",
                                 "ARKSERVE_CLOCK_SKEW_S")
    max_body_bytes: int = _setting(1024 * 1024, "Request bodies of API routes larger than this get 413 before "
                                   "they are read (uploads of the network disk and model market have their own "
                                   "limits).", "ARKSERVE_API_MAX_BODY_BYTES")
    header_timeout_s: float = _setting(10.0, "Time an API client has to send a request's headers (408 and the "
                                       "connection closed after).", "ARKSERVE_API_HEADER_TIMEOUT_S")
    access_log: str = _setting("file", "Where the API's access log (a line per request) goes: 'file' "
                               "(<data_dir>/logs/api-access.log, rotated) or 'terminal' (`arkserve up --access-log`).",
                               "ARKSERVE_API_ACCESS_LOG")
    body_timeout_s: float = _setting(30.0, "Longest pause between body bytes of an API request (408 after).",
                                     "ARKSERVE_API_BODY_TIMEOUT_S")
    login_concurrency: int = _setting(4, "Password hashes (64 MiB each) computed at once; a login beyond this "
                                      "gets 429 at once.", "ARKSERVE_API_LOGIN_CONCURRENCY")
    log_follows_per_user: int = _setting(8, "Log streams (`logs?follow=true`, `service logs -f`, the console's Live "
                                         "log tab) a user may have open at once; one more gets 429 "
                                         "TooManyRequests.", "ARKSERVE_API_LOG_FOLLOWS_PER_USER")
    trusted_proxies: str = _setting("", "Comma-separated addresses of reverse proxies in front of the API whose "
                                    "X-Forwarded-For and X-Forwarded-Proto it believes (the client address the "
                                    "login throttle and security events use). Empty: none; the client is the TCP "
                                    "peer, whatever headers it sends.", "ARKSERVE_API_TRUSTED_PROXIES")


@dataclass(frozen=True)
class GatewaySettings:
    host: str = _setting("127.0.0.1", "Address the gateway listens on.", "ARKSERVE_GATEWAY_HOST")
    addressing: str = _setting("port", "Endpoint addressing: 'port' (one gateway port per service) or "
                               "'host' (<service>.<base_domain>).", "ARKSERVE_GATEWAY_ADDRESSING")
    port_base: int = _setting(20001, "First gateway port handed to services in 'port' addressing (ports "
                              "another program listens on are skipped).",
                              "ARKSERVE_GATEWAY_PORT_BASE")
    host_port: int = _setting(8443, "The single gateway port in 'host' addressing.", "ARKSERVE_GATEWAY_HOST_PORT")
    base_domain: str = _setting("localhost", "Base domain of 'host' addressing.", "ARKSERVE_BASE_DOMAIN")
    tls: bool = _setting(True, "Terminate TLS at the gateway (a local CA is created when no certificate is "
                         "given). Off: plain HTTP, for use behind another TLS terminator.", "ARKSERVE_GATEWAY_TLS")
    tls_cert: str = _setting("", "PEM certificate chain for the gateway (default: generated).",
                             "ARKSERVE_TLS_CERT")
    tls_key: str = _setting("", "PEM private key for --tls-cert.", "ARKSERVE_TLS_KEY")
    admin_port: int = _setting(7781, "Port of the gateway's /metrics and /healthz (127.0.0.1 only; -1: off).",
                               "ARKSERVE_GATEWAY_ADMIN_PORT")
    header_timeout_s: float = _setting(10.0, "Time a client has to send a request's headers (408 after).",
                                       "ARKSERVE_GATEWAY_HEADER_TIMEOUT_S")
    body_timeout_s: float = _setting(60.0, "Longest pause between body bytes of a request (408 after).",
                                     "ARKSERVE_GATEWAY_BODY_TIMEOUT_S")
    idle_timeout_s: float = _setting(75.0, "Idle keep-alive connections from clients are closed after this.",
                                     "ARKSERVE_GATEWAY_IDLE_TIMEOUT_S")
    tunnel_idle_s: float = _setting(300.0, "A WebSocket (or other Upgrade) connection with no byte either way "
                                    "for this long is closed.", "ARKSERVE_GATEWAY_TUNNEL_IDLE_S")
    connect_timeout_s: float = _setting(3.0, "Connecting to a replica; a replica that times out is ejected for a while "
                                        "and the request retried on another.", "ARKSERVE_GATEWAY_CONNECT_TIMEOUT_S")
    max_header_bytes: int = _setting(64 * 1024, "Request line + headers larger than this get 431.",
                                     "ARKSERVE_GATEWAY_MAX_HEADER_BYTES")
    max_body_bytes: int = _setting(8 * 1024**3, "Request bodies larger than this get 413.",
                                   "ARKSERVE_GATEWAY_MAX_BODY_BYTES")
    queue_timeout_s: float = _setting(30.0, "How long a request waits for a ready replica (e.g. scaling from 0) "
                                      "before 503 + Retry-After.", "ARKSERVE_GATEWAY_QUEUE_TIMEOUT_S")
    queue_max: int = _setting(1024, "Waiting requests per service and worker; beyond it 503 at once.",
                              "ARKSERVE_GATEWAY_QUEUE_MAX")
    workers: int = _setting(0, "Gateway worker processes sharing the ports (0: one per core, at most 4).",
                            "ARKSERVE_GATEWAY_WORKERS")
    shutdown_grace_s: float = _setting(30.0, "At shutdown (SIGTERM, Ctrl-C, `arkserve down`) the gateway stops "
                                       "accepting and lets in-flight requests finish for up to this long; a second "
                                       "Ctrl-C ends the wait.", "ARKSERVE_GATEWAY_SHUTDOWN_GRACE_S")


@dataclass(frozen=True)
class RuntimeSettings:
    kind: str = _setting("local", "Runtime backend: 'local' (processes on this host), 'docker' or 'kubernetes' "
                         "(a Pod per replica; docs/kubernetes.md).", "ARKSERVE_RUNTIME")
    docker_url: str = _setting("", "Docker Engine address (default: DOCKER_HOST or the local socket).",
                               "ARKSERVE_DOCKER_URL")
    docker_instance: str = _setting("", "Docker runtime: a label value (ark.instance) that keeps this platform's "
                                    "containers apart from another arkserve's on the same daemon. Empty: every "
                                    "arkserve container on the daemon is this platform's.", "ARKSERVE_DOCKER_INSTANCE")
    docker_network: str = _setting("arkserve", "Docker runtime: the network replicas' containers join. arkserve "
                                   "creates it when it is missing, as a bridge with traffic between its containers "
                                   "off (enable_icc=false), so that no replica can call another's port past the "
                                   "gateway's signature check (docs/security.md). An existing network of that name "
                                   "is used as it is; 'bridge' is Docker's default network, where containers reach "
                                   "each other.", "ARKSERVE_DOCKER_NETWORK")
    stop_replicas_on_exit: bool = _setting(
        False, "Stop every replica when the reconciler exits; the next start creates them anew. Off (the "
        "default for `arkserve reconciler`): they keep serving and the next reconciler adopts them. "
        "`arkserve up` turns it on unless given --keep-replicas.", "ARKSERVE_STOP_REPLICAS_ON_EXIT")
    replica_user: str = _setting("nobody", "Local runtime, when the platform runs as root: the unprivileged user "
                                 "replicas run as inside their sandbox (never root).", "ARKSERVE_REPLICA_USER")
    sandbox_paths: str = _setting("", "Local runtime: extra host paths (':'-separated) replicas see read-only, "
                                  "e.g. a shared Python or model directory. The data dir is never shown.",
                                  "ARKSERVE_SANDBOX_PATHS")
    model_cache_gib: float = _setting(50.0, "Node-local model cache (<data_dir>/model-cache): past this size the "
                                      "least recently used model versions no service mounts are evicted, GiB.",
                                      "ARKSERVE_MODEL_CACHE_GIB")
    cpu_overcommit: float = _setting(0.0, "Placement hands out at most this many times a host's CPUs to instance "
                                     "types (1: never more than there are; 0: CPUs are accounted and shown but never "
                                     "keep a replica from starting). docs/capacity.md.", "ARKSERVE_CPU_OVERCOMMIT")
    memory_overcommit: float = _setting(0.0, "The same for memory (1: never more than the host has; 0: no limit). "
                                        "GPUs are always placed strictly, never overcommitted.",
                                        "ARKSERVE_MEMORY_OVERCOMMIT")
    inventory_every_s: float = _setting(60.0, "The reconciler records its host's CPUs, memory and GPUs (NVML) at "
                                        "start and again this often, seconds.", "ARKSERVE_INVENTORY_EVERY_S")
    kube_namespace: str = _setting("arkserve", "Kubernetes runtime: the namespace replicas' Pods (and their pull "
                                   "Secrets) live in.", "ARKSERVE_KUBE_NAMESPACE")
    kubeconfig: str = _setting("", "Kubernetes runtime: a kubeconfig file to reach the cluster with. Empty: the "
                               "in-cluster service account (the reconciler runs in the cluster).",
                               "ARKSERVE_KUBECONFIG")
    kube_volume_claim: str = _setting("", "Kubernetes runtime: the ReadWriteMany PersistentVolumeClaim holding the "
                                      "data dir (network disk, model cache); replicas mount sub-paths of it. Empty: "
                                      "services with mounts cannot start.", "ARKSERVE_KUBE_VOLUME_CLAIM")
    kube_shared_root: str = _setting("", "Kubernetes runtime: where that claim's root is mounted in the reconciler "
                                     "(a mount's source must lie under it). Empty: the data dir.",
                                     "ARKSERVE_KUBE_SHARED_ROOT")
    kube_rw_mounts: bool = _setting(False, "Kubernetes runtime: allow read-write network-disk mounts. Off by "
                                    "default: the kubelet resolves a subPath's links before it binds it, so a "
                                    "replica that can write a folder could point another replica's mount at any "
                                    "folder on the claim, another user's included (docs/kubernetes.md). Turn on "
                                    "only where every user of the platform is trusted.",
                                    "ARKSERVE_KUBE_RW_MOUNTS")
    kube_start_timeout_s: float = _setting(600.0, "Kubernetes runtime: how long a new Pod may take to run (image "
                                           "pull included) before it is removed and retried, seconds.",
                                           "ARKSERVE_KUBE_START_TIMEOUT_S")


@dataclass(frozen=True)
class ReconcilerSettings:
    leader_election: str = _setting(
        "auto", "One active reconciler among several copies: 'store' (a lease row in the store: any multi-node "
        "deployment on PostgreSQL), 'kubernetes' (a coordination.k8s.io Lease), 'off' (this reconciler always acts: "
        "run only one), 'auto' (off on SQLite, as under the embedded `arkserve up`; kubernetes under the Kubernetes "
        "runtime; else store). docs/kubernetes.md.", "ARKSERVE_LEADER_ELECTION")
    lease_duration_s: float = _setting(10.0, "Leader lease duration, seconds: a crashed leader is replaced this long "
                                       "after its last renewal (renewed every quarter of it; a leader that cannot "
                                       "renew stops acting a quarter before it expires).", "ARKSERVE_LEASE_DURATION_S")
    lease_namespace: str = _setting("", "Namespace of the Kubernetes Lease (default: runtime.kube_namespace).",
                                    "ARKSERVE_LEASE_NAMESPACE")


@dataclass(frozen=True)
class RegistrySettings:
    enabled: bool = _setting(True, "Run the image registry (CNCF Distribution, Debian package docker-registry) as a "
                             "part of `arkserve up --runtime docker`.", "ARKSERVE_REGISTRY_ENABLED")
    host: str = _setting("127.0.0.1", "Address the registry listens on.", "ARKSERVE_REGISTRY_HOST")
    port: int = _setting(7782, "Port of the registry.", "ARKSERVE_REGISTRY_PORT")
    address: str = _setting("", "Registry address in image names (`docker push <address>/<user>/<repo>:<tag>`); "
                            "default <host>:<port>.", "ARKSERVE_REGISTRY_ADDRESS")
    binary: str = _setting("/usr/bin/docker-registry", "The Distribution binary (Debian package docker-registry).",
                           "ARKSERVE_REGISTRY_BINARY")
    quota_gib: float = _setting(50.0, "Registry storage per user, GiB: past it the token service refuses pushes.",
                                "ARKSERVE_REGISTRY_QUOTA_GIB")
    token_ttl_s: int = _setting(300, "Lifetime of a registry token, seconds.", "ARKSERVE_REGISTRY_TOKEN_TTL_S")


@dataclass(frozen=True)
class DiskSettings:
    quota_gib: float = _setting(100.0, "Network disk quota per user, GiB (an admin can set another per user).",
                                "ARKSERVE_DISK_QUOTA_GIB")
    model_quota_gib: float = _setting(100.0, "Model-market storage per user, GiB: the sizes of the versions of the "
                                      "models a user owns. Past it, publishing answers 413 ModelQuotaExceeded; "
                                      "admins are not limited.", "ARKSERVE_DISK_MODEL_QUOTA_GIB")
    upload_ttl_s: int = _setting(86400, "A resumable disk upload not continued for this long is forgotten, with "
                                 "its stored bytes.", "ARKSERVE_DISK_UPLOAD_TTL_S")
    min_free_mib: int = _setting(1024, "Free space, MiB, that uploads (network disk, WebDAV, model market) must "
                                 "leave on the data dir's file system, for the store, the logs and the replicas' "
                                 "log spools: an upload that would pass it answers 507 InsufficientStorage before "
                                 "a byte is stored. 0: no floor.", "ARKSERVE_DISK_MIN_FREE_MIB")
    webdav: bool = _setting(True, "Serve each user's network disk over WebDAV at /dav/ on the API port.",
                            "ARKSERVE_DISK_WEBDAV")


@dataclass(frozen=True)
class BillingSettings:
    enforce: bool = _setting(False, "Enforce balances: pay-as-you-go replicas need a balance above the overdraft "
                             "limit (402 InsufficientBalance otherwise) and running ones stop after the grace. Off: "
                             "usage is still metered into the ledger, nothing is refused.", "ARKSERVE_BILLING_ENFORCE")
    overdraft_limit: float = _setting(0.0, "Pay-as-you-go stops when a balance is at or below this (currency units; "
                                      "-50 lets a user run 50 into debt).", "ARKSERVE_BILLING_OVERDRAFT_LIMIT")
    grace_s: float = _setting(600.0, "Running pay-as-you-go replicas of a user whose balance reached the overdraft "
                              "limit keep running this long, then their services are scaled to 0.",
                              "ARKSERVE_BILLING_GRACE_S")
    meter_interval_s: float = _setting(30.0, "Seconds between meter passes (each bills the replica-seconds since "
                                       "the last).", "ARKSERVE_BILLING_METER_INTERVAL_S")
    prepaid_discount: float = _setting(0.2, "Discount of a prepaid month against 720 pay-as-you-go hours (a year "
                                       "costs 10 months).", "ARKSERVE_BILLING_PREPAID_DISCOUNT")
    currency: str = _setting("CNY", "Currency code shown with amounts.", "ARKSERVE_BILLING_CURRENCY")


@dataclass(frozen=True)
class AsyncSettings:
    max_body_bytes: int = _setting(100 * 1024**2, "Largest body of an asynchronous request (413 above it).",
                                   "ARKSERVE_ASYNC_MAX_BODY_BYTES")
    inline_bytes: int = _setting(256 * 1024, "Asynchronous request and result bodies up to this size are stored in "
                                 "the store's row; larger ones in a file under <data_dir>/async/ (fsynced before the "
                                 "202).", "ARKSERVE_ASYNC_INLINE_BYTES")
    user_queued_bytes: int = _setting(1024**3, "Bytes of request bodies one user may have waiting in the "
                                      "asynchronous queue (queued or running; a public service's anonymous requests "
                                      "count together, per service); a submission past it gets 429 AsyncQueueFull. "
                                      "0: no bound.", "ARKSERVE_ASYNC_USER_QUEUED_BYTES")
    retention_s: float = _setting(86400.0, "Finished asynchronous requests (and their results) are kept this long, "
                                  "seconds, then purged.", "ARKSERVE_ASYNC_RETENTION_S")
    concurrency: int = _setting(32, "Asynchronous requests one dispatcher sends at a time.",
                                "ARKSERVE_ASYNC_CONCURRENCY")
    lease_s: float = _setting(30.0, "A dispatcher's claim on a request (renewed while it runs); a killed dispatcher's "
                              "requests go back to the queue this long after its last renewal.",
                              "ARKSERVE_ASYNC_LEASE_S")
    deliver_timeout_s: float = _setting(900.0, "How long a queued request is retried while the platform cannot take "
                                        "it (no replica, gateway away), seconds; then it fails.",
                                        "ARKSERVE_ASYNC_DELIVER_TIMEOUT_S")
    request_timeout_s: float = _setting(3600.0, "Longest wait for the app's answer to one asynchronous request.",
                                        "ARKSERVE_ASYNC_REQUEST_TIMEOUT_S")
    max_attempts: int = _setting(20, "Sends of one request before it fails (retries while no replica can take it, "
                                 "and claims lost with a dispatcher that died).",
                                 "ARKSERVE_ASYNC_MAX_ATTEMPTS")
    callback_hosts: str = _setting("", "Comma-separated host names or addresses a callback URL may name although they "
                                   "are loopback, private or link-local (by default such callbacks are refused).",
                                   "ARKSERVE_ASYNC_CALLBACK_HOSTS")
    callback_attempts: int = _setting(8, "Attempts to deliver a callback (backoff 1 s doubling, at most 5 min apart).",
                                      "ARKSERVE_ASYNC_CALLBACK_ATTEMPTS")
    callback_timeout_s: float = _setting(10.0, "Timeout of one callback POST, seconds.",
                                         "ARKSERVE_ASYNC_CALLBACK_TIMEOUT_S")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(Path("~/.arkserve"), "Directory for the SQLite store, keys, CA and logs.",
                              "ARKSERVE_DATA_DIR")
    log_level: str = _setting("info", "Log level: debug, info, warning, error.", "ARKSERVE_LOG_LEVEL")
    retention_days: float = _setting(7.0, "Events, request-log records and the logs of deleted replicas are kept "
                                     "this many days.", "ARKSERVE_RETENTION_DAYS")
    store: StoreSettings = field(default_factory=StoreSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    reconciler: ReconcilerSettings = field(default_factory=ReconcilerSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    disk: DiskSettings = field(default_factory=DiskSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    asyncq: AsyncSettings = field(default_factory=AsyncSettings)

    @property
    def database_url(self) -> str:
        return self.store.database_url or f"sqlite:///{self.data_dir / 'arkserve.db'}"

    @property
    def api_url(self) -> str:
        return self.api.public_url or f"http://{self.api.host}:{self.api.port}"

    @property
    def registry_address(self) -> str:
        return self.registry.address or f"{self.registry.host}:{self.registry.port}"

    @property
    def registry_listen(self) -> str:
        """Where the registry listens (``registry.host:registry.port``, an IPv6 host in brackets): a name of it
        as good as :attr:`registry_address` (``arkserve.registry.names.names_registry``)."""
        host = self.registry.host
        return f"[{host}]:{self.registry.port}" if ":" in host else f"{host}:{self.registry.port}"


_GROUPS = ("store", "api", "gateway", "runtime", "reconciler", "registry", "disk", "billing", "asyncq")


def _coerce(kind: Any, raw: Any, name: str) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValidationFailed(f"setting {name}: expected a boolean, got {raw!r}", field=name)
    if kind in (int, float):
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise ValidationFailed(f"setting {name}: expected a number, got {raw!r}", field=name) from None
    if kind is Path:
        return Path(str(raw)).expanduser()
    return str(raw)


def _build(cls: type[Any], prefix: str, layers: list[Mapping[str, Any]], env: Mapping[str, str]) -> Any:
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in _GROUPS:
            continue
        key = f"{prefix}{f.name}"
        raw: Any = dataclasses.MISSING
        for layer in layers:  # lowest precedence first
            if key in layer:
                raw = layer[key]
        env_name = f.metadata.get("env")
        if env_name and env_name in env:
            raw = env[env_name]
        if raw is not dataclasses.MISSING:
            values[f.name] = _coerce(hints[f.name], raw, key)
    return cls(**values)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build settings. ``flags`` uses dotted keys (``"api.port"``, ``"data_dir"``); ``None`` values are unset."""
    env = dict(os.environ if env is None else env)
    flag_layer = {k: v for k, v in (flags or {}).items() if v is not None}
    data_dir = Path(str(flag_layer.get("data_dir") or env.get("ARKSERVE_DATA_DIR") or "~/.arkserve")).expanduser()
    config_path = Path(env.get("ARKSERVE_CONFIG") or data_dir / "config.yaml")
    file_layer: dict[str, Any] = {}
    if config_path.is_file():
        loaded = yaml.safe_load(config_path.read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ValidationFailed(f"config file {config_path} must hold a mapping", field="config")
        file_layer = _flatten(loaded)
    # flags beat env, so apply env first (inside _build) and flags as a last layer.
    top = _build(Settings, "", [file_layer], env)
    top = dataclasses.replace(top, **{k: _coerce(Path if k == "data_dir" else str, v, k)
                                      for k, v in flag_layer.items() if "." not in k})
    groups = {}
    for name in _GROUPS:
        cls = type(getattr(top, name))
        group = _build(cls, f"{name}.", [file_layer], env)
        hints = get_type_hints(cls)
        overrides = {k.split(".", 1)[1]: _coerce(hints[k.split(".", 1)[1]], v, k)
                     for k, v in flag_layer.items() if k.startswith(f"{name}.")}
        groups[name] = dataclasses.replace(group, **overrides)
    result: Settings = dataclasses.replace(
        top, data_dir=data_dir if "data_dir" not in flag_layer else top.data_dir, **groups)
    return result


def describe() -> list[tuple[str, str, str, str]]:
    """(dotted name, env var, default, doc) of every setting, for the configuration reference."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(cls: type[Any], prefix: str) -> None:
        for f in fields(cls):
            if f.name in _GROUPS and prefix == "":
                continue
            default = f.default if f.default is not dataclasses.MISSING else ""
            shown = str(default) if isinstance(default, Path) else repr(default)
            rows.append((f"{prefix}{f.name}", f.metadata.get("env") or "", shown, f.metadata.get("doc", "")))

    walk(Settings, "")
    for name in _GROUPS:
        walk(type(getattr(Settings(), name)), f"{name}.")
    return rows


def to_env(settings: Settings) -> dict[str, str]:
    """Every setting as its ``ARKSERVE_*`` variable, so child processes see exactly these settings."""
    out: dict[str, str] = {}

    def walk(obj: Any) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)
            elif f.metadata.get("env"):
                out[f.metadata["env"]] = ("1" if value else "0") if isinstance(value, bool) else str(value)

    walk(settings)
    return out


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md is this text; a test keeps them equal)."""
    out = ["# Configuration reference", "",
           "Generated from `arkserve/settings.py` by `python -m arkserve.settings > docs/configuration.md`.", "",
           "Precedence: command-line flags > environment variables > config file (`<data_dir>/config.yaml`, or "
           "the file named by `ARKSERVE_CONFIG`, with the dotted names below nested as YAML mappings) > defaults.",
           "Other variables: `ARKSERVE_MASTER_KEY` (base64 of 32 bytes; default: `<data_dir>/master.key`), "
           "`ARKSERVE_CLI_CONFIG` (CLI profiles file), `ARKSERVE_PROFILE`, `ARKSERVE_ENDPOINT`, "
           "`ARKSERVE_ACCESS_KEY` + `ARKSERVE_SECRET_KEY` (CLI credentials without a profile).", "",
           "| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, env, default, doc in describe():
        out.append(f"| `{name}` | `{env}` | `{default}` | {doc} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
