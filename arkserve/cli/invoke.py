"""``arkserve invoke`` (a signed request to a service endpoint) and ``arkserve sign`` (headers for curl)."""

from __future__ import annotations

import sys
import time
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from arkserve.auth import signing
from arkserve.cli.context import SERVICE_NAME, api_errors, service_path, state
from arkserve.cli.output import fail
from arkserve.sdk.auth import ArkAuth


def _parse_headers(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for h in pairs:
        k, sep, v = h.partition(":")
        if not sep:
            fail(f"-H expects 'Name: value', got {h!r}")
        out[k.strip()] = v.strip()
    return out


@click.command("invoke", help="Send a signed request to a service endpoint and print the response.")
@click.argument("service_name", type=SERVICE_NAME)
@click.argument("path", default="/")
@click.option("-X", "--request", "method", default=None, help="Method (default GET, or POST with -d/-F).")
@click.option("-d", "--data", default=None, help="Request body; @file reads a file.")
@click.option("-F", "--form", "form", multiple=True, help="Multipart field: name=value or name=@file.")
@click.option("-H", "--header", "headers", multiple=True, help="Extra header 'Name: value'.")
@click.option("-v", "--verbose", is_flag=True, help="Show the string to sign and the response headers.")
@click.option("--async", "is_async", is_flag=True,
              help="Queue it (X-Ark-Async: true): prints {id, status_url} at once; `arkserve async get ID`.")
@click.option("--callback", default=None, help="With --async: POST the result to this URL (signed, docs/async.md).")
@api_errors
def invoke(service_name: str, path: str, method: str | None, data: str | None, form: tuple[str, ...],
           headers: tuple[str, ...], verbose: bool, is_async: bool, callback: str | None) -> None:
    p = state().load_profile()
    with state().client() as c:
        endpoint = c.get(service_path(service_name))["endpoint"]
    body = None
    if data is not None:
        body = open(data[1:], "rb").read() if data.startswith("@") else data.encode()  # noqa: SIM115
    files: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for f in form:
        k, _, v = f.partition("=")
        if v.startswith("@"):
            files[k] = (v[1:].rsplit("/", 1)[-1], open(v[1:], "rb"))  # noqa: SIM115
        else:
            fields[k] = v
    method = (method or ("POST" if body is not None or form else "GET")).upper()
    verify: bool | str = p.ca_bundle or True
    url = endpoint.rstrip("/") + (path if path.startswith("/") else "/" + path)
    auth = ArkAuth(p.access_key, p.secret_key)
    extra = _parse_headers(headers)
    if callback is not None and not is_async:
        fail("--callback needs --async")
    if is_async:
        extra["X-Ark-Async"] = "true"
        if callback is not None:
            extra["X-Ark-Callback-Url"] = callback
    with httpx.Client(verify=verify, timeout=120) as http:
        req = http.build_request(method, url, content=body, data=fields or None, files=files or None,
                                 headers=extra)
        if verbose:
            signed = next(auth.auth_flow(req))
            sts = signing.string_to_sign(method, req.url.raw_path.decode(), signed.headers["date"],
                                         signed.headers["host"], signed.headers["x-ark-content-sha256"])
            click.echo("> string to sign:\n" + "\n".join("> " + line for line in sts.split("\n")), err=True)
        try:
            resp = http.send(req, auth=auth)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {url}: {exc}")
            raise
    if verbose:
        click.echo(f"< HTTP {resp.status_code}", err=True)
        for k, v in resp.headers.items():
            click.echo(f"< {k}: {v}", err=True)
    sys.stdout.buffer.write(resp.content)
    if resp.content and not resp.content.endswith(b"\n"):
        sys.stdout.write("\n")
    if resp.status_code >= 400:
        raise SystemExit(1)


@click.command("sign", help="Print signature headers for METHOD URL, as curl -H arguments.")
@click.argument("method")
@click.argument("url")
@click.option("-d", "--data", default=None, help="Body to sign; @file reads a file. Omit: unsigned payload.")
def sign(method: str, url: str, data: str | None) -> None:
    p = state().load_profile()
    parts = urlsplit(url)
    body = None
    if data is not None:
        body = open(data[1:], "rb").read() if data.startswith("@") else data.encode()  # noqa: SIM115
    raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = signing.sign_headers(method=method.upper(), url=raw, host=parts.netloc, access_key=p.access_key,
                                   secret_key=p.secret_key, body=body, now=time.time())
    click.echo(" ".join(f"-H '{k}: {v}'" for k, v in headers.items()))
