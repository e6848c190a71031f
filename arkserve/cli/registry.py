"""``arkserve registry``: the image registry as a part (run by ``arkserve up --runtime docker``, or alone beside
the API in a split deployment). It writes Distribution's configuration and becomes ``docker-registry serve``."""

from __future__ import annotations

import click

from arkserve.cli.server import _settings, store_options


@click.command("registry", help="Run the image registry (CNCF Distribution, Debian package docker-registry) with "
                                "token authentication by the API.")
@store_options
@click.option("--port", type=int, default=None, help="Listen port (default 7782).")
def registry(data_dir: str | None, database_url: str | None, port: int | None) -> None:
    from arkserve.registry.process import exec_registry, missing_binary

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url, "registry.port": port})
    problem = missing_binary(s)
    if problem:
        raise click.ClickException(problem)
    exec_registry(s)
