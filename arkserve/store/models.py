"""Queries on the model market: models (card, publisher, visibility) and their immutable versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from arkserve.errors import Conflict, NotFound
from arkserve.store.db import now
from arkserve.store.tables import model_versions, models, users

CARD_FIELDS = ("description", "task", "framework", "license")


@dataclass(frozen=True)
class VersionRow:
    model_id: int
    version: str
    digest: str
    manifest: list[dict[str, Any]]
    size: int
    file_count: int
    created_at: float


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    owner_id: int
    owner: str
    description: str
    task: str
    framework: str
    license: str
    public: bool
    created_at: float
    updated_at: float
    versions: list[VersionRow] = field(default_factory=list)


def _select() -> Any:
    return select(models, users.c.username).join(users, users.c.id == models.c.owner_id)


def _model(row: Any, versions: list[VersionRow]) -> ModelRow:
    m = row._mapping
    return ModelRow(m["id"], m["name"], m["owner_id"], m["username"], m["description"], m["task"], m["framework"],
                    m["license"], bool(m["public"]), m["created_at"], m["updated_at"], versions)


def _version(row: Any) -> VersionRow:
    m = row._mapping
    return VersionRow(m["model_id"], m["version"], m["digest"], list(m["manifest"]), int(m["size"]),
                      int(m["file_count"]), m["created_at"])


def _versions(conn: Connection, model_ids: list[int]) -> dict[int, list[VersionRow]]:
    out: dict[int, list[VersionRow]] = {i: [] for i in model_ids}
    if model_ids:
        q = select(model_versions).where(model_versions.c.model_id.in_(model_ids)).order_by(
            model_versions.c.created_at, model_versions.c.id)
        for r in conn.execute(q):
            out[r.model_id].append(_version(r))
    return out


def find(conn: Connection, name: str) -> ModelRow | None:
    row = conn.execute(_select().where(models.c.name == name)).first()
    return _model(row, _versions(conn, [row.id])[row.id]) if row else None


def get(conn: Connection, name: str) -> ModelRow:
    found = find(conn, name)
    if found is None:
        raise NotFound(f'model "{name}" not found (see `arkserve model list`)', code="ModelNotFound")
    return found


def create(conn: Connection, name: str, owner_id: int, card: dict[str, str], public: bool) -> ModelRow:
    t = now()
    try:
        with conn.begin_nested():
            conn.execute(insert(models).values(name=name, owner_id=owner_id, public=public, created_at=t,
                                               updated_at=t, **{k: card.get(k, "") for k in CARD_FIELDS}))
    except IntegrityError:
        raise Conflict(f'model "{name}" already exists', code="ModelExists") from None
    return get(conn, name)


def update_model(conn: Connection, model_id: int, **values: Any) -> None:
    conn.execute(update(models).where(models.c.id == model_id).values(updated_at=now(), **values))


def add_version(conn: Connection, model_id: int, version: str, digest: str, manifest: list[dict[str, Any]]) -> None:
    try:
        with conn.begin_nested():
            conn.execute(insert(model_versions).values(
                model_id=model_id, version=version, digest=digest, manifest=manifest,
                size=sum(int(f["size"]) for f in manifest), file_count=len(manifest), created_at=now()))
    except IntegrityError:
        raise Conflict(f"version {version} already exists; a version never changes: publish a new one",
                       code="VersionExists") from None
    update_model(conn, model_id)


def delete_version(conn: Connection, model_id: int, version: str) -> None:
    conn.execute(delete(model_versions).where(model_versions.c.model_id == model_id,
                                              model_versions.c.version == version))


def delete_model(conn: Connection, model_id: int) -> None:
    conn.execute(delete(model_versions).where(model_versions.c.model_id == model_id))
    conn.execute(delete(models).where(models.c.id == model_id))


def owned_bytes(conn: Connection, owner_id: int) -> int:
    """What the versions of the models a user owns hold, each counted whole (the market's quota)."""
    q = (select(func.coalesce(func.sum(model_versions.c.size), 0))
         .select_from(model_versions.join(models, models.c.id == model_versions.c.model_id))
         .where(models.c.owner_id == owner_id))
    return int(conn.execute(q).scalar_one())


def all_blob_hashes(conn: Connection) -> set[str]:
    """Every SHA-256 some stored version still lists (what blob garbage collection must keep)."""
    return {f["sha256"] for (manifest,) in conn.execute(select(model_versions.c.manifest)) for f in manifest}


def digests_by_ref(conn: Connection) -> dict[str, str]:
    """``name@version`` -> digest, for every version."""
    q = select(models.c.name, model_versions.c.version, model_versions.c.digest).join(
        models, models.c.id == model_versions.c.model_id)
    return {f"{n}@{v}": d for n, v, d in conn.execute(q)}


def manifest_by_digest(conn: Connection, digest: str) -> list[dict[str, Any]] | None:
    same = model_versions.c.digest == digest  # public content address
    row = conn.execute(select(model_versions.c.manifest).where(same).limit(1)).first()
    return list(row[0]) if row else None
