"""Global CLI options (``--profile``, ``--endpoint``) and the API client they lead to."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import click

from arkserve.cli.output import EXIT_AUTH, EXIT_FAILURE, fail
from arkserve.sdk import profiles
from arkserve.sdk.client import ApiError, Client

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    profile: str
    endpoint: str | None

    def load_profile(self) -> profiles.Profile:
        path = profiles.config_path()
        found = profiles.load_all(path).get(self.profile)
        env_ak, env_sk = os.environ.get("ARKSERVE_ACCESS_KEY"), os.environ.get("ARKSERVE_SECRET_KEY")
        if env_ak and env_sk:
            endpoint = self.endpoint or (found.endpoint if found else "http://127.0.0.1:7780")
            return profiles.Profile(endpoint, env_ak, env_sk, found.ca_bundle if found else "")
        if found is None:
            fail(f'no profile "{self.profile}" in {path}: run `arkserve up` on this machine, or set '
                 "ARKSERVE_ACCESS_KEY and ARKSERVE_SECRET_KEY")
            raise AssertionError  # unreachable
        return profiles.Profile(self.endpoint or found.endpoint, found.access_key, found.secret_key,
                                found.ca_bundle)

    @contextmanager
    def client(self) -> Iterator[Client]:
        p = self.load_profile()
        try:
            with Client(p.endpoint, p.access_key, p.secret_key) as c:
                yield c
        except ValueError as exc:  # a malformed SK in the profile
            fail(str(exc))


def state() -> CliState:
    obj = click.get_current_context().find_object(CliState)
    assert obj is not None
    return obj


def api_errors(fn: F) -> F:
    """Turn API errors into a one-line message and a non-zero exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            rid = f" (request {exc.request_id})" if exc.request_id else ""
            fail(f"{exc.message} [{exc.code}]{rid}", EXIT_AUTH if exc.status in (401, 403) else EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]
