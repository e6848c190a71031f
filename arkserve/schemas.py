"""The REST contract: request and response bodies of ``/api/v1`` (pydantic v2 models).

JSON field names here are stable; the CLI's ``-o json`` prints these shapes.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from arkserve.domain.services import MAX_REPLICAS

USERNAME_RE = r"^[a-z][a-z0-9_.-]{1,31}$"
DNS_LABEL_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None


class LoginRequest(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    username: str
    role: str
    csrf_token: str
    expires_at: float


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    created_at: float


class WhoAmI(UserOut):
    auth: Literal["signature", "session"]
    access_key: str | None = None


class UserCreate(_In):
    username: str = Field(pattern=USERNAME_RE, description="2-32 chars: a-z, 0-9, _ . -; starts with a letter")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "user"] = "user"

    @field_validator("username")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.startswith("ark-"):  # the registry's ark-public/ namespace, the ark-pull-token pull credential
            raise ValueError("user names starting with 'ark-' are reserved for the platform")
        return v


class UserPatch(_In):
    disabled: bool | None = None
    role: Literal["admin", "user"] | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256,
                                 description="admin only: set a new password for the user")


class PasswordChange(_In):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class KeyCreate(_In):
    description: str = Field(default="", max_length=200)
    username: str | None = Field(default=None, description="admin only: issue the key to another user")


class KeyOut(BaseModel):
    access_key: str
    secret_key_masked: str
    username: str
    enabled: bool
    description: str
    created_at: float
    last_used_at: float | None


class KeyCreated(KeyOut):
    secret_key: str


class KeyPatch(_In):
    enabled: bool


class RevealRequest(_In):
    password: str = Field(min_length=1, max_length=256)


class RevealOut(BaseModel):
    access_key: str
    secret_key: str


class InstanceTypeIn(_In):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")
    cpus: float = Field(gt=0, le=1024)
    memory_mb: int = Field(gt=0)
    gpus: int = Field(default=0, ge=0, le=64)
    gpu_model: str = Field(default="", max_length=64)
    price_per_hour: float = Field(default=0.0, ge=0)
    billing: Literal["payg", "reserved"] = "payg"
    description: str = Field(default="", max_length=200)
    gpu_fraction: float = Field(default=0.0, ge=0, lt=1, description=(
        "A share of one GPU's memory (e.g. 0.5), with gpus = 0: replicas are packed onto one GPU by memory "
        "(packing, not isolation; docs/capacity.md)"))

    @field_validator("gpu_fraction")
    @classmethod
    def _fraction_or_whole(cls, v: float, info: ValidationInfo) -> float:
        if v > 0 and info.data.get("gpus"):
            raise ValueError("an instance type has whole GPUs (gpus) or a share of one (gpu_fraction), not both")
        return v


class InstanceTypeOut(InstanceTypeIn):
    model_config = ConfigDict(extra="ignore")


ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_MAX_ENTRIES = 1000
ENV_MAX_BYTES = 128 * 1024  # NAME=VALUE strings together (Linux refuses a single one past 128 KiB)
RESERVED_ENV = frozenset({"PORT", "ARK_PORT", "ARK_SERVICE", "ARK_REPLICA", "ARK_MODEL_DIR"})


class ModelMount(_In):
    """Where the model comes from and where the replica sees it (read-only)."""

    source: Literal["image", "market", "disk"] = Field(
        default="image", description="image: baked into the image; market: a model-market entry; "
                                     "disk: a path on the owner's network disk")
    ref: str = Field(default="", max_length=512, description="market: 'name:version'; disk: path in your disk")
    mount_path: str = Field(default="", max_length=256, description="absolute path inside the replica")

    @field_validator("source")
    @classmethod
    def _available(cls, v: str) -> str:
        if v == "market":
            raise ValueError("market models mount through 'mounts': "
                             "[{'source': 'model', 'ref': 'NAME@VERSION', 'mount_path': '/ark/models'}]")
        return v

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if v and (not v.startswith("/") or ".." in v.split("/")):
            raise ValueError("must be an absolute path without '..'")
        return v


class ServiceMount(_In):
    """A model-market version or a network-disk folder, bind-mounted into every replica at ``mount_path``."""

    source: Literal["model", "disk"] = Field(description="model: a model-market version; disk: your network disk")
    ref: str = Field(min_length=1, max_length=512,
                     description="model: NAME@VERSION (e.g. flowers-resnet34@1); disk: a path in your disk")
    mount_path: str = Field(min_length=1, max_length=256, description="absolute path inside the replica")
    read_only: bool = Field(default=True, description="models always mount read-only; disk folders unless false")
    digest: str = Field(default="", max_length=80,
                        description="set by the platform: the digest of the model version (empty for disk)")


class AutoscaleSpec(_In):
    """Automatic replica count from the requests in flight per replica (docs/autoscaling.md)."""

    min: int = Field(default=0, ge=0, le=MAX_REPLICAS, description="never fewer replicas; 0 allows scale to zero")
    max: int = Field(default=8, ge=1, le=MAX_REPLICAS, description="never more replicas")
    target: float = Field(default=4.0, gt=0, le=10000, description="requests in flight (or queued) per replica")
    stable_window_s: float = Field(default=60.0, ge=1, le=3600, description="load averaged over this window")
    panic_window_s: float = Field(default=6.0, ge=1, le=600, description="burst window: scale up at once when it "
                                                                         "asks for twice the replicas")
    scale_in_delay_s: float = Field(default=300.0, ge=0, le=86400, description="scale in only after this long")
    idle_to_zero_s: float = Field(default=600.0, ge=1, le=86400, description="min 0: no request this long -> 0")
    cold_start_timeout_s: float = Field(default=120.0, ge=1, le=3600, description="at 0 replicas a request waits "
                                        "this long in the gateway for the first replica")

    @model_validator(mode="after")
    def _bounds(self) -> AutoscaleSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.panic_window_s > self.stable_window_s:
            raise ValueError("panic_window_s is longer than stable_window_s")
        return self


class AutoscalePatch(_In):
    """The ``autoscale`` fields a PATCH changes; the result is checked whole, as :class:`AutoscaleSpec`."""

    min: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    max: int | None = Field(default=None, ge=1, le=MAX_REPLICAS)
    target: float | None = Field(default=None, gt=0, le=10000)
    stable_window_s: float | None = Field(default=None, ge=1, le=3600)
    panic_window_s: float | None = Field(default=None, ge=1, le=600)
    scale_in_delay_s: float | None = Field(default=None, ge=0, le=86400)
    idle_to_zero_s: float | None = Field(default=None, ge=1, le=86400)
    cold_start_timeout_s: float | None = Field(default=None, ge=1, le=3600)


class ServiceSpec(_In):
    """The fields of a service a user sets; changing those in ``ROLLING_FIELDS`` rolls the replicas."""

    image: str = Field(min_length=1, max_length=512, description="docker: image reference; local: a directory")
    port: int = Field(ge=1, le=65535, description="the port the app listens on")
    command: str = Field(min_length=1, max_length=4096, description="start command (run by /bin/sh -c)")
    instance_type: str = Field(default="cpu.small", max_length=64)
    env: dict[str, str] = Field(default_factory=dict)
    health_path: str | None = Field(default=None, max_length=256, description="HTTP readiness path; none: TCP")
    auth: bool = Field(default=True, description="require AK/SK signatures; false makes the service public")
    pass_authorization: bool = Field(default=False, description="public services: hand the client's "
                                     "Authorization header to the replica (the app checks its own tokens); "
                                     "off: the gateway drops it")
    model: ModelMount = Field(default_factory=ModelMount)
    mounts: list[ServiceMount] = Field(default_factory=list, max_length=16,
                                       description="models and disk folders mounted into each replica")
    max_surge: int = Field(default=1, ge=0, le=1, description="0: replace in place (no spare capacity)")
    request_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_concurrency: int = Field(default=0, ge=0, le=10000, description="per replica; 0 = unlimited")
    startup_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    billing: Literal["auto", "prepaid", "payg"] = Field(
        default="auto", description="auto: the owner's free prepaid instances first, the rest pay-as-you-go; "
                                    "prepaid: only prepaid instances (a replica waits for a free one); payg: "
                                    "pay-as-you-go only (docs/billing.md)")
    on_prepaid_expiry: Literal["payg", "stop"] = Field(
        default="payg", description="when a prepaid instance it runs on expires: continue pay-as-you-go, or "
                                    "scale the service to 0 (never deleted)")
    autoscale: AutoscaleSpec | None = Field(default=None, description="automatic replica count (none: manual, the "
                                            "default; docs/autoscaling.md)")

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > ENV_MAX_ENTRIES:
            raise ValueError(f"at most {ENV_MAX_ENTRIES} variables, got {len(v)}")
        size = sum(len(k.encode()) + len(val.encode()) + 2 for k, val in v.items())
        if size > ENV_MAX_BYTES:
            raise ValueError(f"the environment takes {size} bytes as NAME=VALUE strings; at most {ENV_MAX_BYTES}")
        for k, val in v.items():
            if not ENV_NAME_RE.match(k):
                raise ValueError(f"invalid environment variable name {k!r}")
            if k in RESERVED_ENV:
                raise ValueError(f"{k} is set by the platform")
            if "\x00" in val:
                raise ValueError(f"value of {k} contains a NUL byte")
        return v

    @field_validator("health_path")
    @classmethod
    def _health(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or any(c in v for c in " \r\n")):
            raise ValueError("must start with '/' and contain no spaces")
        return v


class ServiceCreate(ServiceSpec):
    name: str = Field(description="DNS label, unique on the platform")
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)

    @field_validator("name")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError("must be a DNS label: 1-63 chars of a-z, 0-9 and '-', starting with a letter")
        return v


class ServicePatch(_In):
    """Any subset of the spec, and/or the replica count (scaling never rolls replicas).

    The changed spec is validated whole by :class:`ServiceSpec`, the same rules as at create. ``null`` is
    accepted only where it means "unset" (``health_path``: TCP readiness); elsewhere it is a 422."""

    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    image: str | None = Field(default=None, min_length=1, max_length=512)
    port: int | None = Field(default=None, ge=1, le=65535)
    command: str | None = Field(default=None, min_length=1, max_length=4096)
    instance_type: str | None = Field(default=None, max_length=64)
    env: dict[str, str] | None = None
    health_path: str | None = None
    auth: bool | None = None
    pass_authorization: bool | None = None
    model: ModelMount | None = None
    mounts: list[ServiceMount] | None = Field(default=None, max_length=16)
    max_surge: int | None = Field(default=None, ge=0, le=1)
    request_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    max_concurrency: int | None = Field(default=None, ge=0, le=10000)
    startup_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    billing: Literal["auto", "prepaid", "payg"] | None = None
    on_prepaid_expiry: Literal["payg", "stop"] | None = None
    autoscale: AutoscalePatch | None = Field(default=None, description="fields given change the current setting; "
                                            "null turns the autoscaler off (the replica count stays)")

    canary: int | None = Field(default=None, ge=1, le=99, description="percent of requests: the changed spec "
                               "starts as a canary revision beside the stable one instead of a rolling update; "
                               "alone, it re-weights the running canary (docs/canary.md)")

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, v: object, info: ValidationInfo) -> object:
        if v is None and info.field_name not in PATCH_NULLABLE:
            raise ValueError("may not be null (leave the field out to keep its value)")
        return v


PATCH_NULLABLE = frozenset({"health_path", "autoscale"})


class SecurityEventOut(BaseModel):
    time: float
    kind: str = Field(description="login_failed: a wrong user name or password (console login, key reveal, "
                                  "password change)")
    username: str
    client: str = Field(description="the client's address as the API saw it")
    message: str


class ReplicaOut(BaseModel):
    id: str
    state: str
    revision: str
    endpoint: str
    restarts: int
    started_at: float | None
    ready_at: float | None
    last_error: str
    image_digest: str = ""  # the image it was started from (registry manifest digest, or the local image id)
    gpu_indices: str = ""  # the GPUs placement gave it ("0,1"), or the one it has a share of
    gpu_share_mb: int = 0  # its share of that GPU's memory (fractional instance types)
    billing: str = "payg"  # payg | prepaid


class CanaryOut(BaseModel):
    """A service's canary revision beside the stable one (docs/canary.md)."""

    revision: str
    weight: int = Field(description="percent of requests the canary gets; the stable revision gets the rest")
    replicas: int = Field(description="replicas the canary runs: ceil(replicas x weight / 100), at least 1")
    ready: int
    spec: ServiceSpec


class ServiceOut(BaseModel):
    name: str
    owner: str
    status: str
    reason: str
    message: str
    endpoint: str
    replicas: int
    ready: int
    generation: int
    revision: str
    spec: ServiceSpec
    instances: list[ReplicaOut]
    created_at: float
    updated_at: float
    canary: CanaryOut | None = None  # a second revision beside the stable one; instances lists both's replicas


class EventOut(BaseModel):
    time: float
    service: str
    replica: str
    kind: str
    message: str


class RequestRecordOut(BaseModel):
    time: float
    service: str
    replica: str
    method: str
    path: str
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    access_key: str
    client: str
    request_id: str
    revision: str = ""  # of the replica that served it (the stable revision or the canary's, docs/canary.md)


class ModelFileOut(BaseModel):
    path: str
    size: int
    sha256: str


class ModelVersionOut(BaseModel):
    version: str
    digest: str = Field(description="sha256 over the manifest (the version's files and their SHA-256)")
    size: int
    file_count: int
    created_at: float
    files: list[ModelFileOut] | None = Field(default=None, description="the manifest (in a model's own page)")


class ModelOut(BaseModel):
    name: str
    owner: str = Field(description="the publisher")
    description: str = Field(description="Markdown")
    task: str
    framework: str
    license: str
    public: bool
    size: int = Field(description="bytes of the latest version")
    versions: list[ModelVersionOut]
    mounted_by: list[str] = Field(default_factory=list, description="services of yours mounting a version")
    created_at: float
    updated_at: float


class ModelCard(_In):
    description: str | None = Field(default=None, max_length=65536, description="Markdown")
    task: str | None = Field(default=None, max_length=64, description="e.g. image-classification")
    framework: str | None = Field(default=None, max_length=64, description="e.g. pytorch")
    license: str | None = Field(default=None, max_length=64, description="e.g. Apache-2.0")
    public: bool | None = Field(default=None, description="visible to every user (admins only)")


class ModelPublishDisk(ModelCard):
    disk_path: str = Field(min_length=1, max_length=4096, description="a folder of your network disk")


# ---------------------------------------------------------------------------------------------- images (registry)
class ImageTagOut(BaseModel):
    tag: str
    digest: str
    size: int  # compressed bytes: config + layers
    pushed_at: float | None
    image: str  # full reference to pull: <registry>/<repository>:<tag>


class ImageRepositoryOut(BaseModel):
    name: str  # <namespace>/<path>
    owner: str
    public: bool
    tags: list[ImageTagOut]
    size: int  # the tags' sizes summed (shared layers count once per tag)
    pull: str  # pull command of the newest tag


class ImageVisibility(_In):
    public: bool


class PushCommandsOut(BaseModel):
    registry: str
    username: str
    namespace: str
    login: str  # with the console password
    login_with_key: str  # with an access key: AK as user name, SK as password
    tag: str
    push: str
    commands: list[str]


class ImageQuotaOut(BaseModel):
    username: str
    used_bytes: int
    quota_bytes: int


class ImageQuotaIn(_In):
    quota_bytes: int | None = Field(ge=0, description="bytes; null: back to the default (registry.quota_gib)")


# -- the network disk (/api/v1/disk) -----------------------------------------------------------------------
class DiskEntryOut(BaseModel):
    path: str  # relative to the root of the disk ("" is the root)
    name: str
    type: Literal["file", "folder", "link", "other"]
    size: int  # bytes (files; 0 otherwise)
    modified: float


class DiskListingOut(BaseModel):
    path: str
    entries: list[DiskEntryOut]


class DiskUsageOut(BaseModel):
    username: str
    used: int  # bytes stored
    reserved: int  # bytes reserved by uploads in flight
    limit: int  # the quota, bytes


class DiskQuotaIn(_In):
    limit_bytes: int | None = Field(ge=0, description="bytes; null: back to the default (disk.quota_gib)")


class DiskPathIn(_In):
    path: str = Field(description="relative to the root of your disk, e.g. datasets/flowers")


class DiskMoveIn(_In):
    src: str
    dst: str
    overwrite: bool = False


class DiskUploadIn(_In):
    path: str
    size: int = Field(ge=0, description="bytes the finished file will have (checked against the quota now)")
    overwrite: bool = False


class DiskUploadOut(BaseModel):
    id: str
    path: str
    size: int
    offset: int  # bytes stored so far: continue from here
    overwrite: bool
    created_at: float
    expires_at: float
    complete: bool = False  # the file is in place and the session has ended
    entry: DiskEntryOut | None = None


class HostGpuHolder(BaseModel):
    service: str
    replica: str
    owner: str
    share_mb: int = Field(description="0: the whole GPU; else its share of the GPU's memory")
    billing: str


class HostGpu(BaseModel):
    index: int
    uuid: str
    model: str
    memory_mb: int
    free: bool = Field(description="no replica holds it or a share of it")
    free_memory_mb: int = Field(description="memory not yet shared out (0 when a replica holds it whole)")
    holders: list[HostGpuHolder]


class HostAmounts(BaseModel):
    cpus: float
    memory_mb: int
    gpus: int
    replicas: int | None = None


class HostOut(BaseModel):
    """A host with its capacity (CPUs and memory times the overcommit ratios), what replicas hold, what is free."""

    name: str
    runtime: str
    updated_at: float
    gpu_error: str = Field(description="why no GPU was read (no NVIDIA driver, ...), '' when NVML answered")
    capacity: HostAmounts
    physical: dict[str, float]
    overcommit: dict[str, float] = Field(description="placement's ratios: capacity = physical x ratio; 0: CPUs or "
                                         "memory are accounted here but never keep a replica from starting")
    allocated: HostAmounts
    free: HostAmounts
    gpus: list[HostGpu]
