"""Readiness and liveness probes: a TCP connect, or an HTTP GET of the health path expecting 2xx.

A probe has one deadline for the whole exchange (connect, request, status line), not one per socket read: a
replica that trickles its answer a byte at a time would otherwise hold a reconciler worker for as long as it
likes, and a handful of such services would stop reconciliation for everybody. Only the status line is read.
"""

from __future__ import annotations

import re
import socket
import time

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})[ \r]")
_MAX_HEAD = 65536


def probe(host: str, port: int, path: str | None, timeout: float = 1.0) -> tuple[bool, str]:
    """(ok, reason). The reason says what failed in words a user can act on."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return False, f"nothing listens on {host}:{port}"
    except OSError as exc:
        return False, f"TCP connect to {host}:{port} failed: {exc.strerror or exc}"
    with sock:
        if not path:
            return True, ""
        try:
            status = _status(sock, host, port, path, deadline)
        except TimeoutError:
            return False, f"GET {path} on {host}:{port} failed: no answer within {timeout:g} s"
        except (OSError, ValueError) as exc:
            return False, f"GET {path} on {host}:{port} failed: {exc.__class__.__name__} {exc}".strip()
    if 200 <= status < 300:
        return True, ""
    return False, f"GET {path} answered {status}"


def _status(sock: socket.socket, host: str, port: int, path: str, deadline: float) -> int:
    """The status code of ``GET path``, read within ``deadline`` (monotonic)."""

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    sock.settimeout(remaining())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: arkserve-health\r\n"
                 "Connection: close\r\n\r\n".encode("latin-1"))
    head = b""
    while b"\r\n" not in head:
        if len(head) > _MAX_HEAD:
            raise ValueError("no status line in the first 64 KiB")
        sock.settimeout(remaining())
        more = sock.recv(4096)
        if not more:
            raise ValueError("the connection closed before a status line" if not head else "a broken status line")
        head += more
    m = _STATUS.match(head)
    if m is None:
        line = head.split(b"\r\n", 1)[0][:80]
        raise ValueError(f"not an HTTP status line: {line!r}")
    return int(m.group(1))
