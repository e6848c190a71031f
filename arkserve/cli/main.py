"""Entry point of the ``arkserve`` command: global options and the noun groups (plural aliases accepted)."""

from __future__ import annotations

import importlib

import click

from arkserve import __version__
from arkserve.cli.context import CliState

# command name -> (module under arkserve.cli, attribute): a command's module is imported only when it runs (or
# for --help), so `arkserve disk get` does not pay for importing the server, the registry and the SDK's peers
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("server", "up"), "status": ("daemon", "status"), "down": ("daemon", "down"),
    "backup": ("daemon", "backup"), "init": ("server", "init"), "api": ("server", "api"),
    "gateway": ("parts", "gateway"), "reconciler": ("parts", "reconciler"), "dispatcher": ("async_part", "dispatcher"),
    "user": ("users", "user"), "whoami": ("users", "whoami"), "key": ("keys", "key"),
    "service": ("services", "service"), "disk": ("disk", "disk"), "model": ("models", "model"),
    "instance-type": ("instance_types", "instance_type"), "registry": ("registry", "registry"),
    "image": ("images", "image"), "invoke": ("invoke", "invoke"), "sign": ("invoke", "sign"),
    "master-key": ("admin", "master_key"), "billing": ("billing", "billing"), "quota": ("billing", "quota"),
    "host": ("hosts", "host"), "async": ("async_cmd", "async_group"),
    "restore": ("restore", "restore"),
}

ALIASES = {"users": "user", "keys": "key", "services": "service", "images": "image", "models": "model",
           "disks": "disk", "svc": "service"}


class AliasGroup(click.Group):
    """The top-level group: plural aliases, and commands loaded from ``COMMANDS`` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name not in self.commands and name in COMMANDS:
            module, attr = COMMANDS[name]
            command = getattr(importlib.import_module(f"arkserve.cli.{module}"), attr)
            if not isinstance(command, click.Command) or command.name != name:
                raise RuntimeError(f"arkserve.cli.{module}.{attr} is not the command {name!r}")
            self.add_command(command)
        return super().get_command(ctx, name)

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



def main() -> None:
    cli(prog_name="arkserve")
