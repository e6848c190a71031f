"""``arkserve instance-type …``: the instance types (CPU, memory, GPU, price) services run on."""

from __future__ import annotations

import click

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import output_option, render


@click.group("instance-type", help="Instance types (CPU, memory, GPU, price).")
def instance_type() -> None:
    pass


@instance_type.command("list", help="List instance types.")
@output_option
@api_errors
def list_types(fmt: str) -> None:
    with state().client() as c:
        render(c.get("/instance-types"), fmt, ("name", "cpus", "memory_mb", "gpus", "gpu_fraction", "gpu_model",
                                               "price_per_hour", "billing"))


@instance_type.command("create", help="Add an instance type (admin).")
@click.argument("name")
@click.option("--cpus", type=float, required=True)
@click.option("--memory-mb", type=int, required=True)
@click.option("--gpus", type=int, default=0)
@click.option("--gpu-model", default="")
@click.option("--gpu-fraction", type=float, default=0.0,
              help="A share of one GPU's memory (e.g. 0.5) instead of whole GPUs: replicas are packed onto a GPU.")
@click.option("--price-per-hour", type=float, default=0.0)
@click.option("--billing", type=click.Choice(["payg", "reserved"]), default="payg")
@output_option
@api_errors
def create_type(name: str, cpus: float, memory_mb: int, gpus: int, gpu_model: str, gpu_fraction: float,
                price_per_hour: float, billing: str, fmt: str) -> None:
    with state().client() as c:
        render(c.post("/instance-types", {"name": name, "cpus": cpus, "memory_mb": memory_mb, "gpus": gpus,
                                          "gpu_model": gpu_model, "price_per_hour": price_per_hour,
                                          "billing": billing, "gpu_fraction": gpu_fraction}), fmt)


@instance_type.command("delete", help="Remove an instance type (admin).")
@click.argument("name")
@api_errors
def delete_type(name: str) -> None:
    path = f"/instance-types/{segment(name, 'instance type')}"
    with state().client() as c:
        c.delete(path)
    click.echo(f"deleted instance type {name}")
