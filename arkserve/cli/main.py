"""Entry point of the ``arkserve`` command: global options and the noun groups (plural aliases accepted)."""

from __future__ import annotations

import click

from arkserve import __version__
from arkserve.cli import (
    admin,
    async_cmd,
    async_part,
    billing,
    daemon,
    disk,
    hosts,
    images,
    instance_types,
    invoke,
    keys,
    models,
    parts,
    registry,
    server,
    services,
    users,
)
from arkserve.cli.context import CliState

ALIASES = {"users": "user", "keys": "key", "services": "service", "images": "image", "models": "model",
           "disks": "disk", "svc": "service"}


class AliasGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else name), cmd, rest


@click.group(cls=AliasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arkserve")
@click.option("--profile", envvar="ARKSERVE_PROFILE", default="default", show_default=True,
              help="CLI profile (endpoint + access key) to use.")
@click.option("--endpoint", envvar="ARKSERVE_ENDPOINT", default=None, help="API URL, overriding the profile's.")
@click.pass_context
def cli(ctx: click.Context, profile: str, endpoint: str | None) -> None:
    """arkserve: self-hosted AI inference services."""
    ctx.obj = CliState(profile=profile, endpoint=endpoint)


for command in (server.up, daemon.status, daemon.down, daemon.backup,
                server.init, server.api, parts.gateway, parts.reconciler, users.user, users.whoami, keys.key,
                services.service, disk.disk, models.model, instance_types.instance_type, registry.registry,
                images.image, invoke.invoke, invoke.sign, admin.master_key, billing.billing, billing.quota,
                hosts.host, async_part.dispatcher, async_cmd.async_group):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="arkserve")
