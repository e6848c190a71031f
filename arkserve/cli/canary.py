"""``arkserve service promote|rollback`` and the canary parts of ``service update --canary`` and ``service get``
(docs/canary.md)."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from arkserve.cli.context import SERVICE_NAME, api_errors, service_path, state
from arkserve.cli.output import EXIT_TIMEOUT, fail, output_option, printable, render
from arkserve.domain.rollout import Replica, settled
from arkserve.sdk.client import Client

canary_option = click.option(
    "--canary", "canary", type=click.IntRange(1, 99), default=None, metavar="PCT",
    help="Start the changes as a canary revision beside the stable one with PCT%% of requests (1-99) instead of "
         "a rolling update; alone, re-weight the running canary. Then `service promote` or `service rollback`.")


def canary_line(svc: dict[str, Any]) -> str:
    """``canary 1a2b3c4d5e  1/1 ready  split 90/10 (stable/canary)  image …``, or "" without a canary."""
    c = svc.get("canary")
    if not c:
        return ""
    return (f"{c['revision']}   {c['ready']}/{c['replicas']} ready   split {100 - c['weight']}/{c['weight']} "
            f"(stable/canary)   image {c['spec']['image']}")


def wait_canary(c: Client, name: str, timeout: float) -> dict[str, Any]:
    """Poll until every canary replica is ready; exit 1 when one fails, 4 on timeout."""
    deadline = time.monotonic() + timeout
    with Console(stderr=True).status(f"waiting for the canary of {name}…") as status:
        while True:
            svc: dict[str, Any] = c.get(service_path(name))
            can: dict[str, Any] = svc.get("canary") or {}
            if not can:
                fail(f"{name} has no canary any more")
            status.update(f"{name}: canary {can['revision']} {can['ready']}/{can['replicas']} ready")
            if can["ready"] >= can["replicas"]:
                return svc
            if any(i["revision"] == can["revision"] and i["state"] == "failed" and i["restarts"] >= 2
                   for i in svc["instances"]):
                fail(f"the canary of {name} is failing: {svc['message']}")
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:g}s: canary {can['revision']} {can['ready']}/{can['replicas']} "
                     f"ready; {svc['message']}", EXIT_TIMEOUT)
            time.sleep(0.5)


def _settled(c: Client, name: str, timeout: float) -> dict[str, Any]:
    """Poll until every replica runs the service's (stable) revision and is ready; 4 on timeout."""
    deadline = time.monotonic() + timeout
    with Console(stderr=True).status(f"waiting for {name}…") as status:
        while True:
            svc: dict[str, Any] = c.get(service_path(name))
            status.update(f"{name}: {svc['status']}: {escape(printable(svc['message']))}")  # a replica's output
            reps = [Replica(i["state"], i["revision"]) for i in svc["instances"]]
            if settled(svc["replicas"], svc["revision"], reps):
                return svc
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:g}s; {svc['status']} ({svc['reason']}): {svc['message']}", EXIT_TIMEOUT)
            time.sleep(0.5)


def _step(name: str, verb: str, question: str, yes: bool, wait: bool, timeout: float, fmt: str) -> None:
    if not yes:
        click.confirm(question, abort=True)
    with state().client() as c:
        svc = c.post(service_path(name, f"/canary/{verb}"), {})
        if wait:
            svc = _settled(c, name, timeout)
    if fmt != "table":
        render(svc, fmt)
        return
    done = "promoted: revision" if verb == "promote" else "rolled back: every request goes to revision"
    click.echo(printable(f"{name} {done} {svc['revision']}; {svc['status']} ({svc['reason']}): {svc['message']}"))


@click.command("promote", help="Promote the canary: it becomes the stable revision with 100% of requests and the "
                               "old revision's replicas drain (exit 1 with NoCanary when there is none).")
@click.argument("name", type=SERVICE_NAME)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Wait until every replica runs the promoted revision (4 on timeout).")
@click.option("--timeout", type=float, default=600, show_default=True)
@output_option
@api_errors
def promote(name: str, yes: bool, wait: bool, timeout: float, fmt: str) -> None:
    _step(name, "promote", f"Promote the canary of {name} to 100% of requests?", yes, wait, timeout, fmt)


@click.command("rollback", help="Roll the canary back: every request to the stable revision, the canary's replicas "
                                "drain (exit 1 with NoCanary when there is none).")
@click.argument("name", type=SERVICE_NAME)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Wait until the canary's replicas are gone (4 on timeout).")
@click.option("--timeout", type=float, default=600, show_default=True)
@output_option
@api_errors
def rollback(name: str, yes: bool, wait: bool, timeout: float, fmt: str) -> None:
    _step(name, "rollback", f"Roll back the canary of {name} and stop its replicas?", yes, wait, timeout, fmt)
