"""Local TCP ports: whether one is free to listen on.

``arkserve up`` checks its fixed ports with it before starting anything, and the API skips ports
taken on its host when it hands a gateway port to a new service: the gateway binds service ports
with ``SO_REUSEPORT``, so a port another arkserve on the same host (same user) already listens on
would otherwise be shared with it silently, and one held by any other program would leave the
service's endpoint dead.
"""

from __future__ import annotations

import socket


def port_free(host: str, port: int) -> bool:
    """Whether a plain listening socket could bind ``host:port`` now (``TIME_WAIT`` leftovers do not count)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
