"""``arkserve service …``, ``arkserve instance-type …``, and the signed-request helpers ``invoke`` and ``sign``."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from arkserve.cli import canary as canary_cmd
from arkserve.cli.autoscale import autoscale_line, autoscale_option, parse_autoscale
from arkserve.cli.context import SERVICE_NAME, api_errors, service_path, state
from arkserve.cli.models import mount_lines, parse_mount
from arkserve.cli.output import EXIT_TIMEOUT, fail, output_option, printable, render
from arkserve.cli.pages import paging_options, show_pages
from arkserve.domain.rollout import Replica, settled
from arkserve.domain.services import MAX_REPLICAS, SERVICE_STATUSES
from arkserve.sdk.client import ApiError, Client

COLUMNS = ("name", "status", "ready", "replicas", "endpoint", "auth", "instance_type", "reason")
REPLICA_COLUMNS = ("id", "state", "endpoint", "restarts", "started_at", "last_error")


def _row(svc: dict[str, Any]) -> dict[str, Any]:
    return {**svc, "auth": "on" if svc["spec"]["auth"] else "OFF (public)", "ready": _ready(svc),
            "instance_type": svc["spec"]["instance_type"]}


def _ready(svc: dict[str, Any]) -> str:
    """The stable revision's ready replicas, and a canary's beside them: ``0 +1 canary`` (docs/canary.md)."""
    can = svc.get("canary")
    return f"{svc['ready']} +{can['ready']} canary" if can else str(svc["ready"])


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for p in pairs:
        if "=" not in p:
            fail(f"--env expects KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = v
    return out


def wait_ready(c: Client, name: str, timeout: float) -> dict[str, Any]:
    """Poll until the service has settled (every desired replica on the current revision and ready); exit 1
    with the status message when its replicas on that revision fail (crash loop, stalled rollout), and
    ``EXIT_TIMEOUT`` when ``timeout`` passes first."""
    console = Console(stderr=True)
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {name}…") as status:
        while True:
            svc: dict[str, Any] = c.get(service_path(name))
            rev, want = svc["revision"], svc["replicas"]
            done = sum(1 for i in svc["instances"] if i["revision"] == rev and i["state"] == "ready")
            status.update(f"{name}: {done}/{want} ready on revision {rev} — {svc['status']}: "
                          f"{escape(printable(svc['message']))}")  # a replica's output: neither markup nor controls
            canary_rev = (svc.get("canary") or {}).get("revision")  # a canary's replicas are not the count's
            mine = [i for i in svc["instances"] if i["revision"] != canary_rev]
            if settled(want, rev, [Replica(i["state"], i["revision"]) for i in mine]) \
                    and svc["status"] in ("ready", "stopped"):
                return svc
            failing = any(i["revision"] == rev and i["state"] == "failed" for i in svc["instances"])
            if svc["status"] in ("failed", "degraded") and failing:
                fail(f"{name} is {svc['status']} ({svc['reason']}): {svc['message']}")
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:g}s: {done}/{want} replicas ready on revision {rev}; "
                     f"{svc['status']} ({svc['reason']}): {svc['message']}", EXIT_TIMEOUT)
            time.sleep(0.5)


@click.group("service", help="Create, scale, update and inspect inference services.")
def service() -> None:
    pass


@service.command("create", help="Create a service. IMAGE is an image reference (docker) or a directory (local).")
@click.argument("name", type=SERVICE_NAME)
@click.option("--image", required=True, help="Image reference, or the app directory on the local runtime.")
@click.option("--port", type=int, required=True,
              help="Docker runtime: the port the app listens on inside its container. Local runtime: not used; "
                   "each replica gets a free port in $PORT, and the app must listen on $PORT.")
@click.option("--command", "command", required=True, help="Start command, run by /bin/sh -c.")
@click.option("--instance-type", default="cpu.small", show_default=True)
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@click.option("--health-path", default=None, help="HTTP readiness path (default: TCP connect).")
@click.option("--no-auth", is_flag=True, help="Public service: no signature required. Anyone can call it.")
@click.option("--model-source", type=click.Choice(["image", "disk", "market"]), default="image", show_default=True)
@click.option("--model-ref", default="", help="disk: path in your disk; market: name:version.")
@click.option("--mount-path", default="", help="Where the replica sees the model (read-only).")
@click.option("--mount", "mounts", multiple=True, metavar="SPEC",
              help="model:NAME@VERSION:/path or disk:/folder:/path[:rw] (repeatable; read-only unless :rw).")
@click.option("--max-surge", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0 replaces replicas in place on updates (no spare capacity needed).")
@click.option("--billing", type=click.Choice(["auto", "prepaid", "payg"]), default="auto", show_default=True,
              help="auto: your free prepaid instances first, the rest pay-as-you-go (docs/billing.md).")
@click.option("--on-prepaid-expiry", type=click.Choice(["payg", "stop"]), default="payg", show_default=True,
              help="When a prepaid instance it runs on expires: continue pay-as-you-go, or scale to 0.")
@autoscale_option
@click.option("--wait", is_flag=True, help="Wait until every replica is ready (exit 1 if they fail, 4 on timeout).")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds --wait waits.")
@output_option
@api_errors
def create(name: str, image: str, port: int, command: str, instance_type: str, replicas: int, env: tuple[str, ...],
           health_path: str | None, no_auth: bool, model_source: str, model_ref: str, mount_path: str,
           mounts: tuple[str, ...], max_surge: int, billing: str, on_prepaid_expiry: str, autoscale: str | None,
           wait: bool, timeout: float, fmt: str) -> None:
    body = {"name": name, "image": image, "port": port, "command": command, "instance_type": instance_type,
            "replicas": replicas, "env": _env(env), "health_path": health_path, "auth": not no_auth,
            "model": {"source": model_source, "ref": model_ref, "mount_path": mount_path}, "max_surge": max_surge,
            "mounts": [parse_mount(m) for m in mounts], "billing": billing, "on_prepaid_expiry": on_prepaid_expiry}
    if autoscale is not None:
        body["autoscale"] = parse_autoscale(autoscale)
    with state().client() as c:
        svc = c.post("/services", body)
        if wait:
            svc = wait_ready(c, name, timeout)
    render(_row(svc), fmt, COLUMNS) if fmt == "table" else render(svc, fmt)


@service.command("list", help="List services in name order: the first page (--limit), or every page with --all.")
@click.option("--prefix", default=None, help="Only names starting with this.")
@click.option("--status", default=None, type=click.Choice(SERVICE_STATUSES), help="Only services in this status.")
@click.option("--owner", default=None, help="Only this user's services (admin).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Services per page.")
@click.option("--cursor", default=None, help="Start at this page (the cursor a previous list printed).")
@click.option("--all", "every", is_flag=True, help="Every page, printed as each arrives.")
@output_option
@api_errors
def list_services(prefix: str | None, status: str | None, owner: str | None, limit: int, cursor: str | None,
                  every: bool, fmt: str) -> None:
    with state().client() as c:
        pages = c.pages("/services", prefix=prefix, status=status, owner=owner, limit=limit, cursor=cursor)
        show_pages(pages, fmt, COLUMNS, every=every, noun="services", row=_row)


@service.command("get", help="Show a service: status, reason, message and one line per replica.")
@click.argument("name", type=SERVICE_NAME)
@output_option
@api_errors
def get(name: str, fmt: str) -> None:
    with state().client() as c:
        svc = c.get(service_path(name))
    if fmt != "table":
        render(svc, fmt)
        return
    spec = svc["spec"]
    # The message (a replica's last output), the image, the command and mounts are the owner's text: printable()
    click.echo(printable(f"Name:       {svc['name']}   (owner {svc['owner']})\n"
                         f"Status:     {svc['status']} ({svc['reason']})"))
    click.echo(printable(f"Message:    {svc['message']}\nEndpoint:   {svc['endpoint']}   auth: "
                         f"{'on' if spec['auth'] else 'OFF (public)'}"))
    click.echo(printable(f"Image:      {spec['image']}   port {spec['port']}   command: {spec['command']}"))
    can = svc.get("canary")
    beside = f" (+ canary {can['ready']}/{can['replicas']} ready)" if can else ""
    click.echo(f"Replicas:   {svc['ready']}/{svc['replicas']} ready{beside}   instance type {spec['instance_type']}   "
               f"revision {svc['revision']}")
    click.echo(f"Scaling:    {autoscale_line(spec)}")
    if svc.get("canary"):
        click.echo(printable(f"Canary:     {canary_cmd.canary_line(svc)}"))
    for i, line in enumerate(mount_lines(spec)):
        click.echo(printable(f"{'Mounts:' if i == 0 else '':<12}{line}"))
    click.echo()
    render(svc["instances"], "table", REPLICA_COLUMNS)


@service.command("scale", help="Set the number of replicas (0 allowed).",
                 context_settings={"ignore_unknown_options": True})  # so that -1 reaches the range check
@click.argument("name", type=SERVICE_NAME)
@click.argument("replicas", type=click.IntRange(0, MAX_REPLICAS))
@click.option("--wait", is_flag=True, help="Wait until the new count is ready (exit 1 if they fail, 4 on timeout).")
@click.option("--timeout", type=float, default=600, show_default=True)
@output_option
@api_errors
def scale(name: str, replicas: int, wait: bool, timeout: float, fmt: str) -> None:
    with state().client() as c:
        svc = c.patch(service_path(name), {"replicas": replicas})
        if wait:
            svc = wait_ready(c, name, timeout)
    render(_row(svc), fmt, COLUMNS) if fmt == "table" else render(svc, fmt)


@service.command("update", help="Change the spec; image/command/env/port/instance type roll replicas one at a time.")
@click.argument("name", type=SERVICE_NAME)
@click.option("--image")
@click.option("--port", type=int, help="The app's port in its container (Docker runtime; see `create --help`).")
@click.option("--command", "command")
@click.option("--instance-type")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Replaces the whole environment.")
@click.option("--health-path")
@click.option("--auth/--no-auth", default=None, help="Require signatures (or make the service public).")
@click.option("--max-surge", type=click.IntRange(0, 1))
@click.option("--mount", "mounts", multiple=True, metavar="SPEC", help="Replaces all mounts (see create).")
@click.option("--no-mounts", is_flag=True, help="Remove every mount.")
@click.option("--billing", type=click.Choice(["auto", "prepaid", "payg"]), default=None,
              help="Prepaid instances and/or pay-as-you-go (docs/billing.md).")
@click.option("--on-prepaid-expiry", type=click.Choice(["payg", "stop"]), default=None)
@autoscale_option
@canary_cmd.canary_option
@click.option("--wait", is_flag=True, help="Wait until every replica runs the new revision and is ready (exit 1 if "
                                           "the rollout stalls, 4 on timeout); with --canary: until the canary's "
                                           "replicas are ready.")
@click.option("--timeout", type=float, default=600, show_default=True)
@output_option
@api_errors
def update(name: str, image: str | None, port: int | None, command: str | None, instance_type: str | None,
           env: tuple[str, ...], health_path: str | None, auth: bool | None, max_surge: int | None,
           mounts: tuple[str, ...], no_mounts: bool, billing: str | None, on_prepaid_expiry: str | None,
           autoscale: str | None, canary: int | None, wait: bool, timeout: float, fmt: str) -> None:
    body: dict[str, Any] = {k: v for k, v in {"image": image, "port": port, "command": command,
                                              "instance_type": instance_type, "health_path": health_path,
                                              "auth": auth, "max_surge": max_surge, "billing": billing,
                                              "on_prepaid_expiry": on_prepaid_expiry}.items() if v is not None}
    if env:
        body["env"] = _env(env)
    if mounts or no_mounts:
        body["mounts"] = [parse_mount(m) for m in mounts]
    if autoscale is not None:
        body["autoscale"] = parse_autoscale(autoscale)
    if not body and canary is None:
        fail("nothing to change: give at least one option")
    if canary is not None:
        body["canary"] = canary
    with state().client() as c:
        svc = c.patch(service_path(name), body)
        if wait:
            svc = canary_cmd.wait_canary(c, name, timeout) if canary is not None else wait_ready(c, name, timeout)
    render(_row(svc), fmt, COLUMNS) if fmt == "table" else render(svc, fmt)


@service.command("delete", help="Delete a service: drains and stops every replica.")
@click.argument("name", type=SERVICE_NAME)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Wait until every replica has stopped and the service is gone.")
@click.option("--timeout", type=float, default=300, show_default=True)
@api_errors
def delete(name: str, yes: bool, wait: bool, timeout: float) -> None:
    if not yes:
        click.confirm(f"Delete service {name} and stop all its replicas?", abort=True)
    with state().client() as c:
        c.delete(service_path(name))
        if not wait:
            click.echo(f"deleting service {name} (replicas drain, then stop)")
            return
        deadline = time.monotonic() + timeout
        with Console(stderr=True).status(f"deleting {name}…"):
            while True:
                try:
                    c.get(service_path(name))
                except ApiError as exc:
                    if exc.status == 404:
                        break
                    raise
                if time.monotonic() > deadline:
                    fail(f"timed out after {timeout:.0f}s waiting for {name} to be deleted")
                time.sleep(0.5)
    click.echo(f"deleted service {name}")


@service.command("events", help="Events of a service (created, scaled, replica started/ready/crashed, …): the "
                 "newest page, oldest first; --all: every event, newest first, a page at a time.")
@click.argument("name", type=SERVICE_NAME)
@click.option("--since", default=None, help="e.g. 10m, 2h, 1d")
@paging_options("events", 200, 5000)
@output_option
@api_errors
def events(name: str, since: str | None, limit: int, cursor: str | None, every: bool, fmt: str) -> None:
    with state().client() as c:
        pages = c.pages(service_path(name, "/events"), since=since, limit=limit, cursor=cursor)
        show_pages(pages, fmt, ("time", "kind", "replica", "message"), every=every, noun="events", newest_first=True)


@service.command("requests", help="Recent requests with the replica that served each (newest first).")
@click.argument("name", type=SERVICE_NAME)
@click.option("--replica", default=None)
@click.option("--since", default=None, help="e.g. 10m, 2h")
@click.option("--limit", type=int, default=100, show_default=True)
@output_option
@api_errors
def requests_(name: str, replica: str | None, since: str | None, limit: int, fmt: str) -> None:
    with state().client() as c:
        rows = c.get(service_path(name, "/requests"), replica=replica, since=since, limit=limit)
    render(rows, fmt, ("time", "replica", "revision", "method", "path", "status", "latency_ms", "access_key",
                       "request_id"))


@service.command("logs", help="Replica logs (stdout/stderr), merged by time; --follow streams.")
@click.argument("name", type=SERVICE_NAME)
@click.option("--replica", default=None)
@click.option("--since", default=None, help="e.g. 10m")
@click.option("--tail", type=int, default=None)
@click.option("--previous", is_flag=True, help="The previous run of a restarted replica.")
@click.option("-f", "--follow", is_flag=True)
@api_errors
def logs(name: str, replica: str | None, since: str | None, tail: int | None, previous: bool, follow: bool) -> None:
    # The app's own output. Piped, it goes out as it is (like `docker logs`); on a terminal, its control characters
    # are shown escaped but its colours (SGR) kept, whole lines at a time so that no SGR is cut in two.
    tty, held = sys.stdout.isatty(), ""
    with state().client() as c:
        try:
            for chunk in c.stream_text(service_path(name, "/logs"), replica=replica, since=since, tail=tail,
                                       previous=previous or None, follow=follow or None):
                if tty:
                    head, nl, held = (held + chunk).rpartition("\n")
                    chunk = printable(head + nl, keep_colours=True)
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        finally:
            if held:
                sys.stdout.write(printable(held, keep_colours=True))
                sys.stdout.flush()


service.add_command(canary_cmd.promote)
service.add_command(canary_cmd.rollback)
