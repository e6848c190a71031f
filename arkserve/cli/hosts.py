"""``arkserve host …``: the hosts replicas run on, with capacity, allocated and free, and who holds each GPU."""

from __future__ import annotations

from typing import Any

import click

from arkserve.cli.context import api_errors, state
from arkserve.cli.output import output_option, render


@click.group("host", help="Hosts: capacity, allocated, free; GPUs and who holds them (admin).")
def host() -> None:
    pass


def _summary(h: dict[str, Any]) -> dict[str, Any]:
    cap, used, free = h["capacity"], h["allocated"], h["free"]
    return {"name": h["name"], "runtime": h["runtime"],
            "cpus": f"{used['cpus']:g} of {cap['cpus']:g} ({free['cpus']:g} free)",
            "memory_mb": f"{used['memory_mb']} of {cap['memory_mb']} ({free['memory_mb']} free)",
            "gpus": f"{used['gpus']} of {cap['gpus']} ({free['gpus']} free)" if cap["gpus"] else
            f"none{': ' + h['gpu_error'] if h['gpu_error'] else ''}",
            "replicas": used.get("replicas") or 0, "updated_at": h["updated_at"]}


def _gpu_rows(h: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for g in h["gpus"]:
        held = ", ".join(f"{x['service']}/{x['replica']}" + (f" ({x['share_mb']} MiB)" if x["share_mb"] else "")
                         for x in g["holders"])
        rows.append({"host": h["name"], "gpu": g["index"], "model": g["model"], "memory_mb": g["memory_mb"],
                     "free_memory_mb": g["free_memory_mb"], "held_by": held or "free"})
    return rows


@host.command("list", help="List hosts: CPUs, memory and GPUs allocated of capacity (the overcommit ratios "
              "applied), and each GPU with the replicas holding it (admin).")
@output_option
@api_errors
def list_hosts(fmt: str) -> None:
    with state().client() as c:
        hosts = c.get("/hosts")
    if fmt != "table":
        render(hosts, fmt)
        return
    if not hosts:
        click.echo("no host has reported yet (the reconciler records its host when it starts)")
        return
    render([_summary(h) for h in hosts], fmt, ("name", "runtime", "cpus", "memory_mb", "gpus", "replicas",
                                               "updated_at"))
    gpus = [row for h in hosts for row in _gpu_rows(h)]
    if gpus:
        click.echo()
        render(gpus, fmt, ("host", "gpu", "model", "memory_mb", "free_memory_mb", "held_by"))
