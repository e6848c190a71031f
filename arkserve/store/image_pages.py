"""Pages of the image list: the registry's repositories as the store records them (owner, visibility), keyset
on the repository name (the table's primary key), filters and a total count.

A repository is recorded when its first push is allowed, so the records are the registry's catalogue in
name order, and the API reads tags from the registry for one page of repositories only. A page is
``name > after ORDER BY name LIMIT n``, never an OFFSET: a repository pushed or deleted while a client
pages neither repeats nor skips another one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, func, or_, select

from arkserve.store.images import Repository, _row, _select
from arkserve.store.tables import image_repositories

_name = image_repositories.c.name


@dataclass(frozen=True)
class ImageFilters:
    """Which repositories a list shows: the public ones, or those of one namespace (a user's own; admins may
    name another). ``namespace`` narrows the public ones too; ``prefix`` matches the whole name or the part
    after any ``/`` in it (``demo`` finds ``kate/demo-flower``)."""

    public: bool = False
    namespace: str = ""
    prefix: str = ""
    public_namespace: str = ""  # a namespace whose repositories are all public (``ark-public``)


@dataclass(frozen=True)
class ImagePage:
    rows: list[Repository]
    total: int  # repositories on record the filters match, on all pages
    last: str | None  # the name to continue after when there are more rows, else None


def _where(f: ImageFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.public:
        public: ColumnElement[bool] = image_repositories.c.public.is_(True)
        if f.public_namespace:
            public = or_(public, _name.startswith(f.public_namespace + "/", autoescape=True))
        conds.append(public)
    if f.namespace or not f.public:
        conds.append(_name.startswith(f.namespace + "/", autoescape=True))
    if f.prefix:
        conds.append(or_(_name.startswith(f.prefix, autoescape=True),
                         _name.contains("/" + f.prefix, autoescape=True)))
    return conds


def page(conn: Connection, f: ImageFilters, *, after: str | None, limit: int) -> ImagePage:
    """Up to ``limit`` repositories in name order after the name ``after`` (None: from the start)."""
    q = _select().where(*_where(f))
    if after is not None:
        q = q.where(_name > after)
    rows = [_row(r) for r in conn.execute(q.order_by(_name).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    total = int(conn.execute(select(func.count()).select_from(image_repositories).where(*_where(f))).scalar_one())
    return ImagePage(rows, total, rows[-1].name if more else None)
