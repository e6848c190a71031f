"""What every route handler receives: the app's store, master key, settings and login throttle."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from arkserve.auth.throttle import LoginGuard
from arkserve.auth.vault import MasterKey
from arkserve.settings import Settings
from arkserve.store.db import Store


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    store: Store
    master: MasterKey
    logins: LoginGuard = field(init=False)  # this process's login throttle and password-hash slots

    def __post_init__(self) -> None:
        object.__setattr__(self, "logins", LoginGuard(self.settings.api.login_concurrency))


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ark
    return ctx
