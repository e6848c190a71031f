"""``arkserve async …``: asynchronous requests by id (status, result) and the webhook secret that signs their
callbacks. Requests are submitted with ``arkserve invoke --async`` (docs/async.md)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import fail, output_option, render

_DONE = ("succeeded", "failed")


@click.group("async", help="Asynchronous requests: status and result by id, the webhook secret.")
def async_group() -> None:
    pass


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    result = doc.get("result") or {}
    cb = doc.get("callback") or {}
    return {"id": doc["id"], "service": doc["service"], "status": doc["status"], "attempts": doc["attempts"],
            "result_status": result.get("status", ""), "result_bytes": result.get("size", ""),
            "callback": f"{cb.get('state')} ({cb.get('attempts')} attempts)" if cb else "",
            "error": doc.get("error") or ""}


@async_group.command("get", help="Show an asynchronous request's status; --result prints the stored response body.")
@click.argument("request_id")
@click.option("--result", "show_result", is_flag=True, help="Print the response body (exit 1 if not succeeded).")
@click.option("--wait", "wait_s", type=float, default=None, help="Wait up to this many seconds for it to finish.")
@output_option
@api_errors
def get(request_id: str, show_result: bool, wait_s: float | None, fmt: str) -> None:
    path = f"/async-requests/{segment(request_id, 'request id')}"
    with state().client() as c:
        doc = c.get(path)
        deadline = time.monotonic() + (wait_s or 0)
        while wait_s and doc["status"] not in _DONE and time.monotonic() < deadline:
            time.sleep(0.5)
            doc = c.get(path)
        if not show_result:
            render(doc if fmt != "table" else _row(doc), fmt)
            if wait_s and doc["status"] not in _DONE:
                fail(f"{request_id} is still {doc['status']} after {wait_s:g} s")
            return
        if doc["status"] not in _DONE:  # queued or running: no result yet
            fail(f"{request_id} is still {doc['status']} after {wait_s:g} s: a longer --wait S waits for it"
                 if wait_s else f"{request_id} is {doc['status']}, its result is not there yet: add --wait S to "
                 "wait up to S seconds for it")
        if doc["status"] != "succeeded":
            fail(f"{request_id} is {doc['status']}" + (f": {doc['error']}" if doc.get("error") else ""))
        resp = c._send("GET", f"{path}/result")  # raw bytes, not JSON
    sys.stdout.buffer.write(resp.content)
    if resp.content and not resp.content.endswith(b"\n"):
        sys.stdout.write("\n")


@async_group.command("secret", help="Show your webhook secret (callbacks are signed with it; docs/signing.md). "
                                    "--service NAME: the secret of a public service of yours, which signs the "
                                    "callbacks of its anonymous requests.")
@click.option("--service", default=None, help="a public service of yours")
@output_option
@api_errors
def secret(service: str | None, fmt: str) -> None:
    with state().client() as c:
        doc = c.get("/webhook-secret", service=service)
    if fmt == "table":  # the secret alone, as `$(arkserve async secret)` has always read it
        click.echo(doc["secret"])
    else:
        render(doc, fmt)
