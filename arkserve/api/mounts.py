"""The mounts of a service spec, checked when it is created or changed: what they name exists and may be used.

Models resolve to their version's digest (stored in the spec: the version is immutable, so the spec says
exactly which bytes each replica sees); disk folders must exist in the service owner's network disk.
Bad mounts are refused before anything is written: 404 unknown model or version, 403 another user's
private model, 400 a missing disk path or a mount path that is relative, ``/``, under ``/proc``,
``/sys`` or ``/dev``, or collides with another mount.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from arkserve.errors import Forbidden, NotFound, PermanentError, ValidationFailed
from arkserve.settings import RuntimeSettings
from arkserve.storage.market import disk_folder, parse_ref
from arkserve.store import models as model_store
from arkserve.store.users import User

FORBIDDEN_ROOTS = ("/proc", "/sys", "/dev")


def _bad(message: str, field: str) -> PermanentError:
    return PermanentError(message, code="InvalidMount", details={"field": field})


def check_target(path: str, field: str) -> str:
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise _bad(f"{field}: mount path {path!r} holds a control character", field)
    if not path.startswith("/"):
        raise _bad(f"{field}: mount path {path!r} must be absolute", field)
    if posixpath.normpath(path) != path or "//" in path:
        raise _bad(f"{field}: mount path {path!r} must be normalized (no '..', '.', '//' or trailing '/')", field)
    if path == "/":
        raise _bad(f"{field}: cannot mount over '/'", field)
    for root in FORBIDDEN_ROOTS:
        if path == root or path.startswith(root + "/"):
            raise _bad(f"{field}: {root} belongs to the system; pick another mount path", field)
    return path


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def resolve(conn: Connection, data_dir: Path, owner: User, spec: dict[str, Any],
            rw_refused: str = "") -> dict[str, Any]:
    """The spec with each model mount's digest filled in; raises on the first bad mount.

    ``rw_refused``: why read-write disk mounts are refused on this platform ('' = they are allowed).
    """
    taken: list[tuple[str, str]] = []
    legacy = spec.get("model") or {}
    if legacy.get("source") == "disk":  # the older single-model field: a disk folder at a path, read-only
        if not legacy.get("mount_path"):
            raise _bad("model.mount_path: a disk model needs the path it is mounted at", "model.mount_path")
        taken.append(("model.mount_path", check_target(legacy["mount_path"], "model.mount_path")))
        _check_disk(data_dir, owner, legacy.get("ref", ""), "model.ref")
    mounts = [dict(m) for m in spec.get("mounts") or []]
    for i, m in enumerate(mounts):
        field = f"mounts.{i}"
        target = check_target(m["mount_path"], f"{field}.mount_path")
        for other_field, other in taken:
            if _overlaps(target, other):
                raise _bad(f"{field}.mount_path: {target} collides with {other_field} ({other})", f"{field}.mount_path")
        taken.append((f"{field}.mount_path", target))
        if m["source"] == "model":
            m["digest"] = _model_digest(conn, owner, m, field)
        else:
            m["digest"] = ""
            if rw_refused and not m.get("read_only", True):
                raise _bad(f"{field}.read_only: {rw_refused}", f"{field}.read_only")
            _check_disk(data_dir, owner, m["ref"], f"{field}.ref")
    return {**spec, "mounts": mounts}


def rw_refused(runtime: RuntimeSettings) -> str:
    """Why this platform refuses read-write disk mounts, or '' (docs/kubernetes.md)."""
    if runtime.kind == "kubernetes" and not runtime.kube_rw_mounts:
        return ("read-write disk mounts are off on the Kubernetes runtime (runtime.kube_rw_mounts, "
                "docs/kubernetes.md); mount the folder read-only")
    return ""


def _check_disk(data_dir: Path, owner: User, ref: str, field: str) -> None:
    try:
        disk_folder(data_dir, owner.username, ref)
    except NotFound:
        raise _bad(f"{field}: {ref} does not exist on {owner.username}'s network disk", field) from None
    except PermanentError as exc:
        raise _bad(f"{field}: {exc.message}", field) from None


def _model_digest(conn: Connection, owner: User, m: dict[str, Any], field: str) -> str:
    if not m.get("read_only", True):
        raise _bad(f"{field}.read_only: model versions are immutable and always mount read-only", f"{field}.read_only")
    try:
        name, version = parse_ref(m["ref"])
    except ValidationFailed as exc:
        raise _bad(f"{field}.ref: {exc.message}", f"{field}.ref") from None
    model = model_store.find(conn, name)
    if model is None:
        raise NotFound(f'{field}.ref: model "{name}" not found in the model market', code="ModelNotFound",
                       details={"field": f"{field}.ref"})
    if not model.public and model.owner_id != owner.id and not owner.is_admin:
        raise Forbidden(f'{field}.ref: model "{name}" is private to {model.owner}', code="ModelPrivate",
                        details={"field": f"{field}.ref"})
    for v in model.versions:
        if v.version == version:
            return v.digest
    known = ", ".join(v.version for v in model.versions) or "none"
    raise NotFound(f'{field}.ref: model "{name}" has no version {version} (versions: {known})',
                   code="ModelVersionNotFound", details={"field": f"{field}.ref"})


def services_mounting(services: list[Any], name: str, version: str | None = None) -> list[str]:
    """Names of the services (``ServiceRow``s) whose spec or canary spec mounts model ``name`` (any version, or
    ``version``): a canary's replicas mount its version now, and promoting it makes it the stable spec."""
    out = []
    for svc in services:
        canary = getattr(svc, "canary_spec", None) or {}
        for m in [*(svc.spec.get("mounts") or []), *(canary.get("mounts") or [])]:
            if m.get("source") != "model":
                continue
            n, _, v = str(m.get("ref", "")).partition("@")
            if n == name and (version is None or v == version):
                out.append(svc.name)
                break
    return out
