"""The REST contract: request and response bodies of ``/api/v1`` (pydantic v2 models).

JSON field names here are stable; the CLI's ``-o json`` prints these shapes. One module per part of the system;
this package re-exports every name, so ``from arkserve.schemas import ServiceSpec`` is the way to import them:

- ``common``: ``_In`` (the base of request bodies: unknown fields are a 422), ``ErrorBody``, and ``MAX_INT64`` /
  ``MAX_INT32``, the largest integers the store's columns hold (bound integer inputs with them: 422, not 500)
- ``users``: console login and session, users, access keys, security events
- ``instance_types``: instance types (CPUs, memory, whole GPUs or a share of one, price)
- ``service_specs``: what a user sends about a service: spec, create, patch, mounts, autoscale, env limits
- ``service_views``: what the API answers about a service: the service, replicas, canary, events, request records
- ``models``: the model market
- ``images``: the image registry
- ``disk``: the network disk
- ``hosts``: capacity hosts and their GPUs
- ``billing_accounts``: the admin's list of every user's balance, month's spend and quotas
"""

from __future__ import annotations

from arkserve.domain.services import DNS_LABEL_RE
from arkserve.schemas.billing_accounts import BillingAccountOut
from arkserve.schemas.common import MAX_INT32, MAX_INT64, ErrorBody
from arkserve.schemas.common import _In as _In
from arkserve.schemas.disk import (
    DiskEntryOut,
    DiskListingOut,
    DiskMoveIn,
    DiskPathIn,
    DiskQuotaIn,
    DiskUploadIn,
    DiskUploadOut,
    DiskUsageOut,
)
from arkserve.schemas.hosts import HostAmounts, HostGpu, HostGpuHolder, HostOut
from arkserve.schemas.images import (
    ImageQuotaIn,
    ImageQuotaOut,
    ImageRepositoryOut,
    ImageTagOut,
    ImageVisibility,
    PushCommandsOut,
)
from arkserve.schemas.instance_types import InstanceTypeIn, InstanceTypeOut
from arkserve.schemas.models import ModelCard, ModelFileOut, ModelOut, ModelPublishDisk, ModelVersionOut
from arkserve.schemas.service_specs import (
    ENV_MAX_BYTES,
    ENV_MAX_ENTRIES,
    ENV_NAME_RE,
    PATCH_NULLABLE,
    RESERVED_ENV,
    AutoscalePatch,
    AutoscaleSpec,
    ModelMount,
    ServiceCreate,
    ServiceMount,
    ServicePatch,
    ServiceSpec,
)
from arkserve.schemas.service_views import CanaryOut, EventOut, ReplicaOut, RequestRecordOut, ServiceOut
from arkserve.schemas.users import (
    USERNAME_RE,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyPatch,
    LoginRequest,
    PasswordChange,
    RevealOut,
    RevealRequest,
    SecurityEventOut,
    SessionOut,
    UserCreate,
    UserOut,
    UserPatch,
    WhoAmI,
)

__all__ = [
    "DNS_LABEL_RE",
    "ENV_MAX_BYTES",
    "ENV_MAX_ENTRIES",
    "ENV_NAME_RE",
    "MAX_INT32",
    "MAX_INT64",
    "PATCH_NULLABLE",
    "RESERVED_ENV",
    "USERNAME_RE",
    "AutoscalePatch",
    "AutoscaleSpec",
    "BillingAccountOut",
    "CanaryOut",
    "DiskEntryOut",
    "DiskListingOut",
    "DiskMoveIn",
    "DiskPathIn",
    "DiskQuotaIn",
    "DiskUploadIn",
    "DiskUploadOut",
    "DiskUsageOut",
    "ErrorBody",
    "EventOut",
    "HostAmounts",
    "HostGpu",
    "HostGpuHolder",
    "HostOut",
    "ImageQuotaIn",
    "ImageQuotaOut",
    "ImageRepositoryOut",
    "ImageTagOut",
    "ImageVisibility",
    "InstanceTypeIn",
    "InstanceTypeOut",
    "KeyCreate",
    "KeyCreated",
    "KeyOut",
    "KeyPatch",
    "LoginRequest",
    "ModelCard",
    "ModelFileOut",
    "ModelMount",
    "ModelOut",
    "ModelPublishDisk",
    "ModelVersionOut",
    "PasswordChange",
    "PushCommandsOut",
    "ReplicaOut",
    "RequestRecordOut",
    "RevealOut",
    "RevealRequest",
    "SecurityEventOut",
    "ServiceCreate",
    "ServiceMount",
    "ServiceOut",
    "ServicePatch",
    "ServiceSpec",
    "SessionOut",
    "UserCreate",
    "UserOut",
    "UserPatch",
    "WhoAmI",
]
