"""What a user sends about a service: its spec (image, command, environment and its limits, mounts,
autoscaling), the create body and the PATCH body, with the rules both are checked by."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from arkserve.domain.services import DNS_LABEL_RE, MAX_REPLICAS
from arkserve.schemas.common import _In

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
    nul_checked_elsewhere = frozenset({"mount_path"})  # 400 InvalidMount, as every bad mount path

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
    nul_checked_elsewhere = frozenset({"mount_path"})  # 400 InvalidMount, as every bad mount path
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
        for k in v:
            if not ENV_NAME_RE.match(k):
                raise ValueError(f"invalid environment variable name {k!r}")
            if k in RESERVED_ENV:
                raise ValueError(f"{k} is set by the platform")
        return v  # a NUL in a value (or in command, image) is refused by the base's check (schemas/common.py)

    @field_validator("health_path")
    @classmethod
    def _health(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or any(c == " " or ord(c) < 32 or c == "\x7f" for c in v)):
            raise ValueError("must start with '/' and contain no spaces or control characters")
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
