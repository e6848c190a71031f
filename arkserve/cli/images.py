"""``arkserve image …``: repositories in the platform registry (list, tags, visibility, delete, push commands,
quota) through the API, and ``image gc``, the registry's garbage collection, run on the registry's host."""

from __future__ import annotations

from typing import Any

import click

from arkserve.cli.context import api_errors, segment, segments, state
from arkserve.cli.output import output_option, render
from arkserve.cli.pages import paging_options, show_pages
from arkserve.registry.names import parse_reference
from arkserve.sdk.client import ApiError, Client

REPO_COLUMNS = ("name", "owner", "public", "tag_count", "size", "pull")
TAG_COLUMNS = ("tag", "digest", "size", "pushed_at", "image")


@click.group("image", help="Images in the platform registry: `docker push` them, run services from them.")
def image() -> None:
    pass


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _path(ref: str) -> str:
    """``/images/NAME[:TAG]``: a name may have a namespace (``team/app``), each part quoted on its own."""
    return f"/images/{segments(ref, 'image name')}"


def _rows(repos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "tag_count": len(r["tags"]), "size": _human(r["size"])} for r in repos]


@image.command("list", help="Your repositories, or with --public the public ones (ark-public/ and shared), in name "
               "order: the first page (--limit), or every page with --all.")
@click.option("--public", is_flag=True, help="Public images instead of yours.")
@click.option("--prefix", default="", help="Only names (or a part after a '/') starting with this.")
@click.option("--owner", default="", help="Only this user's repositories (admins: anyone's; with --public: their "
                                          "public ones).")
@paging_options("repositories", 50, 500)
@output_option
@api_errors
def list_images(public: bool, prefix: str, owner: str, limit: int, cursor: str | None, every: bool, fmt: str) -> None:
    with state().client() as c:
        pages = c.pages("/images", public="true" if public else None, prefix=prefix or None, owner=owner or None,
                        limit=limit, cursor=cursor)
        show_pages(pages, fmt, REPO_COLUMNS, every=every, noun="repositories", row=lambda r: _rows([r])[0])


@image.command("tags", help="Tags of a repository (NAME: yours when it has no namespace) with digest and size.")
@click.argument("name")
@output_option
@api_errors
def tags(name: str, fmt: str) -> None:
    path = _path(name)
    with state().client() as c:
        repo = c.get(path)
    if fmt != "table":
        render(repo["tags"], fmt)
        return
    render([{**t, "size": _human(t["size"])} for t in repo["tags"]], fmt, TAG_COLUMNS)


def _tags_of(c: Client, name: str, digest: str) -> list[str]:
    """The tags of repository ``name`` that name the manifest ``digest`` (none when it has no tags)."""
    try:
        repo = c.get(_path(name))
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise
    return [t["tag"] for t in repo["tags"] if t["digest"] == digest]  # public content address


@image.command("delete", help="Delete a tag (NAME:TAG), one manifest and every tag naming it (NAME@DIGEST), or a "
                              "whole repository (NAME); refused while a service of yours uses it. Space returns "
                              "after `arkserve image gc`.")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def delete(ref: str, yes: bool) -> None:
    path = _path(ref)
    parsed = parse_reference(ref)
    with state().client() as c:
        what = ref
        if parsed.digest:
            tags = _tags_of(c, parsed.repository, parsed.digest)
            what += f" and with it its tags {', '.join(tags)}" if tags else " (no tag names it)"
        elif not parsed.tag:
            what = f"the repository {ref} and all its tags"
        if not yes:
            click.confirm(f"Delete {what}?", abort=True)
        c.delete(path)
    click.echo(f"deleted {what}")


@image.command("visibility", help="Make a repository public (every user may pull it) or private.")
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
@output_option
@api_errors
def visibility(name: str, visibility: str, fmt: str) -> None:
    path = f"{_path(name)}/visibility"
    with state().client() as c:
        repo = c.request("PUT", path, json={"public": visibility == "public"})
    render(repo if fmt != "table" else _rows([repo]), fmt, REPO_COLUMNS)


@image.command("push-commands", help="The docker login, tag and push lines for you and this platform.")
@click.option("--name", default="my-app", show_default=True, help="Repository name in your namespace.")
@click.option("--tag", default="v1", show_default=True)
@click.option("--local", "local_image", default="my-app:latest", show_default=True, help="The local image.")
@output_option
@api_errors
def push_commands(name: str, tag: str, local_image: str, fmt: str) -> None:
    with state().client() as c:
        out = c.get("/images/push-commands", name=name, tag=tag, local=local_image)
    if fmt != "table":
        render(out, fmt)
        return
    click.echo(f"# log in with your password (or: {out['login_with_key']}, the SK as password)")
    for line in out["commands"]:
        click.echo(line)


@image.command("quota", help="Registry storage used and allowed; admins: --user NAME [--set-gib N|default].")
@click.option("--user", "username", default=None)
@click.option("--set-gib", "set_gib", default=None, help="Admin: set the user's quota (GiB), or 'default'.")
@output_option
@api_errors
def quota(username: str | None, set_gib: str | None, fmt: str) -> None:
    with state().client() as c:
        if set_gib is not None:
            if not username:
                raise click.UsageError("--set-gib needs --user")
            value = None if set_gib == "default" else int(float(set_gib) * 1024**3)
            out = c.request("PUT", f"/images/quota/{segment(username, 'user name')}", json={"quota_bytes": value})
        else:
            out = c.get("/images/quota", username=username)
    if fmt != "table":
        render(out, fmt)
        return
    render([{**out, "used": _human(out["used_bytes"]), "quota": _human(out["quota_bytes"])}], fmt,
           ("username", "used", "quota"))


@image.command("gc", help="Admin, on the registry's host: collect the registry's garbage (deleted tags and "
                          "repositories free their blobs). The registry is read-only meanwhile.")
@click.option("--data-dir", default=None, help="Data directory (default ~/.arkserve).")
@click.option("--keep-untagged", is_flag=True, help="Keep manifests no tag names (pushed by digest).")
@output_option
def gc(data_dir: str | None, keep_untagged: bool, fmt: str) -> None:
    from arkserve.cli.server import _settings
    from arkserve.errors import ArkserveError
    from arkserve.registry.maintenance import garbage_collect

    s = _settings(data_dir=data_dir)
    try:
        report = garbage_collect(s, delete_untagged=not keep_untagged)
    except ArkserveError as exc:
        raise click.ClickException(exc.message) from None
    except OSError as exc:
        raise click.ClickException(f"cannot use the data dir {s.data_dir}: {exc.strerror or exc}"
                                   f"{f' ({exc.filename})' if exc.filename else ''}") from None
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: the pass has cleaned up after itself
        raise click.ClickException("garbage collection interrupted; the registry is writable again") from None
    out = {"bytes_before": report.bytes_before, "bytes_after": report.bytes_after,
           "freed_bytes": report.freed_bytes, "blobs_deleted": report.blobs_deleted,
           "manifests_deleted": report.manifests_deleted, "uploads_removed": report.uploads_removed}
    if fmt != "table":
        render(out, fmt)
        return
    click.echo(f"freed {_human(report.freed_bytes)} ({report.blobs_deleted} blobs, {report.manifests_deleted} "
               f"manifests, {report.uploads_removed} abandoned uploads); the registry now holds "
               f"{_human(report.bytes_after)}")
