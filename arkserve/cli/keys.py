"""``arkserve key …``: access keys (AK/SK)."""

from __future__ import annotations

import click

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import output_option, render

# No SK column: a masked secret tells nobody anything (`key reveal` shows it; -o json still has the mask).
COLUMNS = ("access_key", "username", "enabled", "description", "created_at", "last_used_at")


@click.group("key", help="Manage access keys (AK/SK) for signed requests.")
def key() -> None:
    pass


@key.command("list", help="List your access keys (never their SKs: `key reveal` shows one).")
@click.option("--all", "all_users", is_flag=True, help="Admin: every user's keys.")
@output_option
@api_errors
def list_keys(all_users: bool, fmt: str) -> None:
    with state().client() as c:
        render(c.get("/keys", all="true" if all_users else None), fmt, COLUMNS)


@key.command("create", help="Create an access key; the SK is printed once (reveal it later with `key reveal`).")
@click.option("--description", default="", help="What the key is for.")
@click.option("--user", "username", default=None, help="Admin: issue the key to this user.")
@output_option
@api_errors
def create_key(description: str, username: str | None, fmt: str) -> None:
    with state().client() as c:
        render(c.post("/keys", {"description": description, "username": username}), fmt,
               ("access_key", "secret_key", "username", "description"))


@key.command("reveal", help="Show the SK of a key (asks for your password).")
@click.argument("access_key")
@click.option("--password", prompt=True, hide_input=True, help="Your password (prompted when omitted).")
@output_option
@api_errors
def reveal_key(access_key: str, password: str, fmt: str) -> None:
    path = f"{_path(access_key)}/reveal"
    with state().client() as c:
        render(c.post(path, {"password": password}), fmt, ("access_key", "secret_key"))


def _path(access_key: str) -> str:
    return f"/keys/{segment(access_key, 'access key')}"


def _set_enabled(access_key: str, enabled: bool, fmt: str) -> None:
    path = _path(access_key)
    with state().client() as c:
        render(c.patch(path, {"enabled": enabled}), fmt, COLUMNS)


@key.command("disable", help="Disable a key: requests signed with it fail within seconds.")
@click.argument("access_key")
@output_option
@api_errors
def disable_key(access_key: str, fmt: str) -> None:
    _set_enabled(access_key, False, fmt)


@key.command("enable", help="Enable a disabled key.")
@click.argument("access_key")
@output_option
@api_errors
def enable_key(access_key: str, fmt: str) -> None:
    _set_enabled(access_key, True, fmt)


@key.command("delete", help="Delete a key for good.")
@click.argument("access_key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def delete_key(access_key: str, yes: bool) -> None:
    path = _path(access_key)
    if not yes:
        click.confirm(f"Delete access key {access_key}?", abort=True)
    with state().client() as c:
        c.delete(path)
    click.echo(f"deleted access key {access_key}")
