"""The error answers of each API operation in the OpenAPI document, beyond the ones every operation shares (declared
on the ``/api/v1`` router in ``app.py``): those that follow from its shape (413 and 408 on a request body, 400
``InvalidCursor`` on a paged list) and its own (:data:`OPERATION_ERRORS`). Each names the error codes it stands for;
bodies are ``ErrorBody``. ``tests/api/test_openapi_errors.py`` provokes them against a live API and checks each
answer is declared for its operation."""

from __future__ import annotations

from typing import Any

from arkserve.api import limits

# The error answers of each operation beyond the ones every operation shares, as "METHOD /path" (under /api/v1):
# status -> description naming the codes. Bodies are ErrorBody; shared statuses given here override the shared
# description. 400 InvalidCursor (paged lists) and 413/408 (request bodies) are added from the operation's shape.
_SERVICE_404 = "ServiceNotFound: no such service (another user's looks the same)"
_USER_404 = "UserNotFound: no such user"
_KEY_404 = "KeyNotFound: no such access key (another user's looks the same)"
_MODEL_404 = "ModelNotFound: no such model"
_VERSION_404 = "ModelNotFound, ModelVersionNotFound: no such model or version"
_UPLOAD_404 = "UploadNotFound: no such resumable upload (or it expired)"
_IMAGE_404 = "ImageNotFound: no such repository, tag or manifest (a private one of another user looks the same)"
_LOGIN_429 = "LoginThrottled, LoginBusy: too many password checks; retry after Retry-After"
_REGISTRY_503 = ("RegistryUnavailable: the image registry cannot be reached; StoreUnavailable: nor the store; "
                 "retry")
_ADMIT_503 = ("StoreUnavailable; NoFreePrepaidInstance, InsufficientBalance (no prepaid instance free now, or the "
              "balance does not cover the replicas yet); retry")
_MOUNT_400 = "InvalidMount: a mount path or source refused"
_MOUNT_404 = "ModelNotFound, ModelVersionNotFound: a model mount's ref names no model or version"
_WRITE_507 = "InsufficientStorage: the platform's disk is full (or would pass its free-space floor); nothing stored"
_UPLOAD_409 = "PathExists, IsAFolder, UploadInProgress: the name is taken, is a folder, or is being uploaded"
_QUOTA_413 = "QuotaExceeded: over your disk quota (checked before a byte is stored)"

OPERATION_ERRORS: dict[str, dict[int, str]] = {
    "POST /session": {429: _LOGIN_429},
    "POST /me/password": {429: _LOGIN_429},
    "POST /users": {409: "UserExists: a user of that name exists"},
    "GET /users/{username}": {404: _USER_404},
    "PATCH /users/{username}": {404: _USER_404},
    "DELETE /users/{username}": {404: _USER_404},
    "POST /keys": {404: "UserNotFound: no such user (username, admins)",
                   409: "KeyLimitExceeded: the user holds the most access keys allowed"},
    "GET /keys/{access_key}": {404: _KEY_404},
    "PATCH /keys/{access_key}": {404: _KEY_404},
    "DELETE /keys/{access_key}": {404: _KEY_404},
    "POST /keys/{access_key}/reveal": {404: _KEY_404, 429: _LOGIN_429},
    "POST /instance-types": {409: "InstanceTypeExists: an instance type of that name exists"},
    "DELETE /instance-types/{name}": {404: "InstanceTypeNotFound: no such instance type",
                                      409: "InstanceTypeInUse: services run on it"},
    "POST /services": {400: _MOUNT_400, 402: "InsufficientBalance: the balance does not cover the replicas",
                       404: _MOUNT_404,
                       409: "ServiceExists: the name is taken; GatewayPortsExhausted: no gateway port is free",
                       503: _ADMIT_503},
    "GET /services/{name}": {404: _SERVICE_404},
    "PATCH /services/{name}": {400: _MOUNT_400, 402: "InsufficientBalance: the balance does not cover the replicas",
                               404: f"{_SERVICE_404}; {_MOUNT_404}",
                               409: "AutoscalerOn: replicas of an autoscaled service; CanaryActive: a rolling "
                                    "change while a canary runs",
                               503: _ADMIT_503},
    "DELETE /services/{name}": {404: _SERVICE_404},
    "GET /services/{name}/events": {404: _SERVICE_404},
    "GET /services/{name}/requests": {404: _SERVICE_404},
    "GET /services/{name}/logs": {404: _SERVICE_404,
                                  429: "TooManyRequests: as many log streams (follow=true) of this user are open as "
                                       "api.log_follows_per_user allows; retry after Retry-After"},
    "GET /services/{name}/metrics": {404: _SERVICE_404},
    "POST /services/{name}/canary/promote": {404: _SERVICE_404, 402: "InsufficientBalance", 503: _ADMIT_503},
    "POST /services/{name}/canary/rollback": {404: _SERVICE_404},
    "GET /webhook-secret": {404: f"{_SERVICE_404} (?service=)"},
    "GET /async-requests/{request_id}": {404: "AsyncRequestNotFound: no such request (or past its retention)"},
    "GET /async-requests/{request_id}/result": {
        404: "AsyncRequestNotFound: no such request (or past its retention)",
        409: "ResultNotReady: still queued or running; AsyncRequestFailed: it failed"},
    "PUT /disk/files/{path}": {400: "BadPath, SizeMismatch: a refused path, or a body of another length than "
                                    "declared", 409: _UPLOAD_409, 413: _QUOTA_413, 507: _WRITE_507},
    "POST /disk/uploads": {400: "BadPath: a refused path", 409: _UPLOAD_409, 413: _QUOTA_413, 507: _WRITE_507},
    "GET /disk/uploads/{upload_id}": {404: _UPLOAD_404},
    "PATCH /disk/uploads/{upload_id}": {400: "SizeMismatch: the body passes the upload's declared size",
                                        404: _UPLOAD_404,
                                        409: "OffsetMismatch: offset is not the stored one (`offset` tells it); "
                                             "UploadInProgress: another request appends now",
                                        413: _QUOTA_413, 507: _WRITE_507},
    "DELETE /disk/uploads/{upload_id}": {404: _UPLOAD_404},
    "GET /models/{name}": {404: _MODEL_404},
    "GET /models/{name}/versions/{version}": {404: _VERSION_404},
    "PATCH /models/{name}": {404: _MODEL_404},
    "DELETE /models/{name}": {404: _MODEL_404, 409: "ModelInUse: a service mounts one of its versions"},
    "DELETE /models/{name}/versions/{version}": {404: _VERSION_404, 409: "ModelInUse: a service mounts it"},
    "POST /models/{name}/versions/{version}": {
        400: "BadPath, NotAFolder, EmptyVersion, SymlinkRefused: the disk folder cannot be published",
        404: "PathNotFound: no such folder on your disk",
        409: "VersionExists, ModelExists: the version (or the name) is taken",
        413: "ModelQuotaExceeded: over your model market quota", 507: _WRITE_507},
    "PUT /models/{name}/versions/{version}/archive": {
        400: "BadArchive, EmptyVersion, SymlinkRefused: the archive cannot be published",
        409: "VersionExists, ModelExists: the version (or the name) is taken",
        413: "ModelQuotaExceeded: over your model market quota", 507: _WRITE_507},
    "GET /images": {503: _REGISTRY_503},
    "GET /images/quota": {404: "UserNotFound: no such user (?username=, admins)", 503: _REGISTRY_503},
    "PUT /images/quota/{username}": {404: _USER_404, 503: _REGISTRY_503},
    "GET /images/{name}": {404: _IMAGE_404, 503: _REGISTRY_503},
    "PUT /images/{name}/visibility": {404: _IMAGE_404, 503: _REGISTRY_503},
    "DELETE /images/{ref}": {404: _IMAGE_404, 409: "ImageInUse: a service runs it", 503: _REGISTRY_503},
    "GET /billing/prepaid": {404: _USER_404 + " (?user=)"},
    "GET /billing/prepaid-free": {404: _USER_404 + " (?user=)"},
    "PATCH /billing/prepaid/{prepaid_id}": {404: "PrepaidNotFound: no such prepaid instance of yours"},
    "GET /quotas/{username}": {404: _USER_404},
    "PUT /quotas/{username}": {404: _USER_404},
}

# Answers in the registry's own error format ({"errors": [...]}, docs: Distribution auth.token), not ErrorBody.
FOREIGN_ERRORS: dict[str, dict[int, str]] = {
    "GET /registry/token": {429: "TOOMANYREQUESTS (registry error format): too many failed logins; retry later"}}

INVALID_CURSOR = "InvalidCursor: a cursor this API did not issue, or one issued for other filters"
BODY_ERRORS = {413: "PayloadTooLarge: the body is larger than api.max_body_bytes",
               408: "RequestTimeout: a pause between body bytes longer than api.body_timeout_s"}


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def declare_errors(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI document) with each ``prefix`` operation's error answers (see the module's
    docstring); a status declared on its route with only a description gets ``ErrorBody`` too. An entry of
    ``OPERATION_ERRORS`` that names no operation is a mistake: a ``RuntimeError`` (tests/api/test_openapi_errors.py)."""
    seen: set[str] = set()
    for path, item in document["paths"].items():
        if not path.startswith(prefix + "/"):
            continue
        for method, operation in item.items():
            op = f"{method.upper()} {path.removeprefix(prefix)}"
            seen.add(op)
            extra = {**OPERATION_ERRORS.get(op, {})}
            if any(p["in"] == "query" and p["name"] == "cursor" for p in operation.get("parameters", [])):
                extra.setdefault(400, INVALID_CURSOR)
            if "requestBody" in operation and not path.startswith(limits.EXEMPT):
                extra = {**BODY_ERRORS, **extra}
            answers: dict[str, Any] = operation.setdefault("responses", {})
            for status, about in extra.items():
                answers[str(status)] = {"description": about, "content": _error_content()}
            if op in FOREIGN_ERRORS:
                answers.update({str(status): {"description": about} for status, about in FOREIGN_ERRORS[op].items()})
                continue
            for key, answer in answers.items():
                if key.isdigit() and int(key) >= 400 and "content" not in answer:
                    answer["content"] = _error_content()
    unknown = sorted((set(OPERATION_ERRORS) | set(FOREIGN_ERRORS)) - seen)
    if unknown:
        raise RuntimeError(f"OPERATION_ERRORS names operations that do not exist: {', '.join(unknown)}")
    return document
