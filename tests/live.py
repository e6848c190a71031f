"""Run the real API app under uvicorn (plain, or the API's own server configuration) in a background thread on a
free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from arkserve.api import server as api_server
from arkserve.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int | None = None, settings: Settings | None = None,
          tls: tuple[str, str] | None = None) -> Iterator[str]:
    """Yield the API's base URL. With ``settings``: under the API's own server configuration
    (``arkserve.api.server.config``: header deadline, zero-copy transfers), as ``arkserve api`` runs it.
    With ``tls`` (certificate, key): over HTTPS."""
    port = port or free_port()
    config = (uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
              if settings is None else
              api_server.config(app, settings, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    if tls is not None:
        config.ssl_certfile, config.ssl_keyfile = tls
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def gateway_port_base(span: int = 20) -> int:
    """A base for per-service gateway ports: below the kernel's ephemeral range (so no client socket or
    replica port can take one meanwhile), with ``span`` free ports from it."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 32000 - span)
        try:
            for port in range(base, base + span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free block of gateway ports")


def server_port() -> int:
    """A free port for a server started a while after it is chosen (the registry, after the API is prepared): below
    the ephemeral range, where :func:`free_port`'s pick can meanwhile become a client socket's local port (CI once
    saw the registry fail to bind for 30 s that way)."""
    return gateway_port_base(1)
