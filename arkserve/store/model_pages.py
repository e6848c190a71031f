"""Pages of the model market's list: keyset on the (unique) model name, filters, a total count, facets.

A page is ``name > after ORDER BY name LIMIT n`` (never an OFFSET), so a model published or deleted while
a client pages neither repeats nor skips any other one, and a deep page costs what the first one does.
The count and the page come from one read transaction. A page's versions are read without their
manifests (a list shows a version's size and file count, never its files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, or_, select

from arkserve.store.models import ModelRow, VersionRow, _model, _select
from arkserve.store.tables import model_versions, models, users

VISIBILITIES = ("public", "private")


@dataclass(frozen=True)
class ModelFilters:
    """Which models a list shows. ``viewer_id`` is the caller's scope: public models and their own (None:
    every model, for admins); the rest narrow it and never widen it."""

    viewer_id: int | None = None
    prefix: str = ""  # the name starts with it
    query: str = ""  # in the name or the description (any case; % and _ are plain characters)
    task: str = ""
    framework: str = ""
    owner: str = ""  # the publisher's user name
    visibility: str = ""  # "public", "private" or "" (both)


@dataclass(frozen=True)
class ModelPage:
    rows: list[ModelRow]
    total: int  # every model the filters match, on all pages
    last: str | None  # the name to continue after when there are more rows, else None


def _scope(viewer_id: int | None) -> list[ColumnElement[bool]]:
    return [] if viewer_id is None else [or_(models.c.public.is_(True), models.c.owner_id == viewer_id)]


def _where(f: ModelFilters) -> list[ColumnElement[bool]]:
    conds = _scope(f.viewer_id)
    if f.prefix:
        conds.append(models.c.name.startswith(f.prefix, autoescape=True))
    if f.query:
        conds.append(or_(models.c.name.icontains(f.query, autoescape=True),
                         models.c.description.icontains(f.query, autoescape=True)))
    if f.task:
        conds.append(models.c.task == f.task)
    if f.framework:
        conds.append(models.c.framework == f.framework)
    if f.owner:
        conds.append(users.c.username == f.owner)
    if f.visibility:
        conds.append(models.c.public.is_(f.visibility == "public"))
    return conds


def _versions(conn: Connection, model_ids: list[int]) -> dict[int, list[VersionRow]]:
    """Each model's versions, oldest first, without the manifests."""
    out: dict[int, list[VersionRow]] = {i: [] for i in model_ids}
    if model_ids:
        v = model_versions.c
        q = (select(v.model_id, v.version, v.digest, v.size, v.file_count, v.created_at)
             .where(v.model_id.in_(model_ids)).order_by(v.created_at, v.id))
        for r in conn.execute(q):
            out[r.model_id].append(VersionRow(r.model_id, r.version, r.digest, [], int(r.size), int(r.file_count),
                                              r.created_at))
    return out


def page(conn: Connection, f: ModelFilters, *, after: str | None, limit: int) -> ModelPage:
    """Up to ``limit`` models in name order after the name ``after`` (None: from the start)."""
    q = _select().where(*_where(f))
    if after is not None:
        q = q.where(models.c.name > after)
    found = list(conn.execute(q.order_by(models.c.name).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    versions = _versions(conn, [r.id for r in found])
    rows = [_model(r, versions[r.id]) for r in found]
    count: Any = select(func.count()).select_from(models.join(users, users.c.id == models.c.owner_id))
    total = int(conn.execute(count.where(*_where(f))).scalar_one())
    return ModelPage(rows, total, rows[-1].name if more else None)


def facets(conn: Connection, viewer_id: int | None) -> dict[str, list[str]]:
    """The tasks and frameworks of the models the viewer may see (for the filters of a list), sorted."""
    out: dict[str, list[str]] = {}
    for key, column in (("tasks", models.c.task), ("frameworks", models.c.framework)):
        q = select(column).distinct().where(column != "", *_scope(viewer_id)).order_by(column)
        out[key] = [str(v) for (v,) in conn.execute(q)]
    return out
