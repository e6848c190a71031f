"""What every route handler receives: the app's store, master key and settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from arkserve.auth.vault import MasterKey
from arkserve.settings import Settings
from arkserve.store.db import Store


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    store: Store
    master: MasterKey


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ark
    return ctx
