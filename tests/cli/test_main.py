"""The top-level ``arkserve`` group: every command in ``COMMANDS`` loads under its name, the plural aliases
resolve, and a command imports only its own module (``arkserve disk`` never imports the server's)."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from arkserve.cli.main import ALIASES, COMMANDS, cli


def test_every_command_loads_under_its_name_and_the_aliases_resolve() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
    for alias, name in ALIASES.items():
        command = cli.get_command(ctx, alias)
        assert command is not None and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and all(f"  {name} " in result.output for name in COMMANDS)


def test_a_command_imports_only_its_own_module() -> None:
    code = ("import sys; from arkserve.cli.main import main; sys.argv = ['arkserve', 'disk', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('arkserve.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    assert "arkserve.cli.disk'" in loaded
    for other in ("server", "parts", "services", "admin", "registry"):
        assert f"arkserve.cli.{other}'" not in loaded, loaded
