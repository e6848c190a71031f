"""``arkserve user …`` and ``arkserve whoami``."""

from __future__ import annotations

import click

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import output_option, render

COLUMNS = ("username", "role", "disabled", "created_at")


def _path(username: str) -> str:
    return f"/users/{segment(username, 'user name')}"


@click.group("user", help="Manage users (admin), change your password.")
def user() -> None:
    pass


@user.command("list", help="List users.")
@output_option
@api_errors
def list_users(fmt: str) -> None:
    with state().client() as c:
        render(c.get("/users"), fmt, COLUMNS)


@user.command("get", help="Show one user.")
@click.argument("username")
@output_option
@api_errors
def get_user(username: str, fmt: str) -> None:
    path = _path(username)
    with state().client() as c:
        render(c.get(path), fmt, COLUMNS)


@user.command("security-events", help="Failed logins and password checks, newest first (admin; docs/security.md).")
@click.option("--user", "username", default=None, help="Only attempts on this user name.")
@click.option("--limit", type=int, default=100, show_default=True)
@output_option
@api_errors
def security_events(username: str | None, limit: int, fmt: str) -> None:
    with state().client() as c:
        render(c.get("/security/events", username=username, limit=limit), fmt,
               ("time", "kind", "username", "client", "message"))


@user.command("create", help="Create a user; prompts for the password unless --password is given.")
@click.argument("username")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Initial password (prompted when omitted).")
@output_option
@api_errors
def create_user(username: str, role: str, password: str, fmt: str) -> None:
    with state().client() as c:
        render(c.post("/users", {"username": username, "password": password, "role": role}), fmt, COLUMNS)


def _patch(username: str, body: dict[str, object], fmt: str) -> None:
    path = _path(username)
    with state().client() as c:
        render(c.patch(path, body), fmt, COLUMNS)


@user.command("disable", help="Disable a user: their keys and sessions stop working.")
@click.argument("username")
@output_option
@api_errors
def disable_user(username: str, fmt: str) -> None:
    _patch(username, {"disabled": True}, fmt)


@user.command("enable", help="Enable a disabled user.")
@click.argument("username")
@output_option
@api_errors
def enable_user(username: str, fmt: str) -> None:
    _patch(username, {"disabled": False}, fmt)


@user.command("set-role", help="Make a user an admin or a plain user.")
@click.argument("username")
@click.argument("role", type=click.Choice(["user", "admin"]))
@output_option
@api_errors
def set_role(username: str, role: str, fmt: str) -> None:
    _patch(username, {"role": role}, fmt)


@user.command("delete", help="Delete a user, their access keys and their network disk (refused while they own "
                            "services, models or images).")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def delete_user(username: str, yes: bool) -> None:
    path = _path(username)
    if not yes:
        click.confirm(f'Delete user "{username}", all their keys and their network disk?', abort=True)
    with state().client() as c:
        c.delete(path)
    click.echo(f"deleted user {username}")


@user.command("passwd", help="Change your own password.")
@click.option("--current", prompt="Current password", hide_input=True)
@click.option("--new", "new", prompt="New password", hide_input=True, confirmation_prompt=True)
@api_errors
def passwd(current: str, new: str) -> None:
    with state().client() as c:
        c.post("/me/password", {"current_password": current, "new_password": new})
    click.echo("password changed")


@click.command("whoami", help="Show who the current credentials belong to.")
@output_option
@api_errors
def whoami(fmt: str) -> None:
    with state().client() as c:
        render(c.get("/whoami"), fmt, ("username", "role", "auth", "access_key"))
