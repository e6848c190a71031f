"""Which callback URLs asynchronous requests may name (SSRF rules, docs/async.md), the derived secrets, and
the resolved-address check of the dispatcher."""

from __future__ import annotations

import socket

import pytest

from arkserve.asyncq.callbacks import CallbackRefused, shown, target
from arkserve.domain.async_requests import allowed_hosts, callback_refusal, internal_token, webhook_secret

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(("url", "allowed", "refused"), [
    ("https://hooks.example.com/x?y=1", NONE, None),
    ("http://93.184.216.34:8080/hook", NONE, None),
    ("ftp://example.com/", NONE, "http:// or https://"),
    ("https:///nohost", NONE, "no host"),
    ("https://user:pw@example.com/", NONE, "credentials"),
    ("http://127.0.0.1:9000/hook", NONE, "not a public address"),
    ("http://[::1]/hook", NONE, "not a public address"),
    ("http://10.1.2.3/", NONE, "not a public address"),
    ("http://169.254.169.254/latest/meta-data", NONE, "not a public address"),
    ("http://0.0.0.0/", NONE, "not a public address"),
    ("http://100.100.100.200/latest/meta-data", NONE, "not a public address"),  # shared space: a cloud's metadata
    ("http://198.18.0.1/", NONE, "not a public address"),  # benchmarking: not routed on the internet
    ("http://localhost:8000/", NONE, "localhost"),
    ("http://api.localhost/", NONE, "localhost"),
    ("http://localhost./", NONE, "localhost"),
    ("http://127.0.0.1:9000/hook", allowed_hosts("127.0.0.1, hooks.internal"), None),
    ("http://hooks.internal/x", allowed_hosts("127.0.0.1, hooks.internal"), None),
    ("http://example.com:99999/", NONE, "not a valid URL"),
    ("https://example.com/" + "a" * 2100, NONE, "longer than 2048"),
])
def test_callback_urls(url: str, allowed: frozenset[str], refused: str | None) -> None:
    why = callback_refusal(url, allowed)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_a_name_is_checked_by_its_addresses_and_plain_http_is_pinned_to_the_checked_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"rebind.example": "127.0.0.1", "meta.example": "169.254.169.254", "public.example": "93.184.216.34"}

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)  # no DNS server is reachable from the test machines
    for name in ("rebind.example", "meta.example"):
        with pytest.raises(CallbackRefused, match="not a public address"):
            target(f"http://{name}:8000/hook", NONE)
    assert target("http://public.example:8000/hook?a=1", NONE) == (
        "http://93.184.216.34:8000/hook?a=1", {"host": "public.example:8000"})
    assert target("https://public.example/hook", NONE) == ("https://public.example/hook", {})  # the cert decides
    assert target("http://127.0.0.1:8000/hook", frozenset({"127.0.0.1"})) == ("http://127.0.0.1:8000/hook", {})


def test_secrets_are_derived_per_purpose_and_user() -> None:
    key = bytes(range(32))
    assert webhook_secret(key, 1) != webhook_secret(key, 2) and webhook_secret(key, 1).startswith("whsec_")
    assert webhook_secret(key, 1) == webhook_secret(key, 1) and webhook_secret(bytes(32), 1) != webhook_secret(key, 1)
    assert internal_token(key) != internal_token(bytes(32)) and len(internal_token(key)) == 64


@pytest.mark.parametrize(("url", "logged"), [
    ("https://hooks.example.com/services/T0/B0/XXXXsecret", "https://hooks.example.com/…"),
    ("http://10.0.0.5:8080/cb?token=abc", "http://10.0.0.5:8080/…"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/", "https://example.com/"),
    ("http://[::1]:9000/x", "http://[::1]:9000/…"),
])
def test_the_request_log_shows_a_callback_url_without_its_path_or_query(url: str, logged: str) -> None:
    assert shown(url) == logged
