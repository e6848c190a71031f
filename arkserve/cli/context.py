"""Global CLI options (``--profile``, ``--endpoint``), the API client they lead to, and the names that commands
put in its paths (:func:`segment`, :func:`segments`, :data:`SERVICE_NAME`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import click

from arkserve.cli.output import EXIT_AUTH, EXIT_FAILURE, EXIT_USAGE, fail
from arkserve.domain.services import DNS_LABEL_RE  # not arkserve.schemas: pydantic costs every command ~130 ms
from arkserve.sdk import client as sdk
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
        if bool(env_ak) != bool(env_sk):  # half a pair: acting as the profile's user instead would be a surprise
            given, missing = (("ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY") if env_ak
                              else ("ARKSERVE_SECRET_KEY", "ARKSERVE_ACCESS_KEY"))
            fail(f"{given} is set but {missing} is not: set both (credentials without a profile), or neither "
                 f'(the profile "{self.profile}")', EXIT_USAGE)
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


def _usage(quote: Callable[[str, str], str], value: str, what: str) -> str:
    try:
        return quote(value, what)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
        raise AssertionError from None  # unreachable


def segment(value: str, what: str) -> str:
    """A command's argument as ONE quoted segment of an API path (:func:`arkserve.sdk.client.segment`). An empty,
    ``.`` or ``..`` one is a usage error (exit 2, nothing sent): an HTTP client would resolve it, and
    ``service delete ../keys/AK…`` would delete a key. So is one with a ``/``: no name these commands take (user,
    access key, model, version, instance type, request id) may contain one, and the API's server decodes ``%2F``
    before routing, so ``model delete m/versions/2`` would delete version 2 of ``m`` instead."""
    return _usage(sdk.segment, value, what)


def segments(path: str, what: str) -> str:
    """A command's ``a/b/c`` argument (a disk path, ``namespace/repository``) for an API path, quoted segment by
    segment (:func:`arkserve.sdk.client.segments`); a ``.`` or ``..`` segment is a usage error (exit 2)."""
    return _usage(sdk.segments, path, what)


class _ServiceName(click.ParamType[str, Any]):
    """A service name argument, checked before anything is sent (exit 2 when it is not a DNS label)."""

    name = "service name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not DNS_LABEL_RE.fullmatch(str(value)):
            self.fail(f"invalid service name {value!r}: a DNS label is 1-63 characters of a-z, 0-9 and '-', "
                      "starting with a letter", param, ctx)
        return str(value)


SERVICE_NAME = _ServiceName()


def service_path(name: str, tail: str = "") -> str:
    """``/services/NAME`` + ``tail``, the name quoted by :func:`segment`."""
    return f"/services/{segment(name, 'service name')}{tail}"
