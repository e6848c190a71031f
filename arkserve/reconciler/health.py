"""Readiness and liveness probes: a TCP connect, or an HTTP GET of the health path expecting 2xx."""

from __future__ import annotations

import http.client
import socket


def probe(host: str, port: int, path: str | None, timeout: float = 1.0) -> tuple[bool, str]:
    """(ok, reason). The reason says what failed in words a user can act on."""
    if not path:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True, ""
        except ConnectionRefusedError:
            return False, f"nothing listens on {host}:{port}"
        except OSError as exc:
            return False, f"TCP connect to {host}:{port} failed: {exc.strerror or exc}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "arkserve-health", "Connection": "close"})
        resp = conn.getresponse()
        resp.read(65536)
        if 200 <= resp.status < 300:
            return True, ""
        return False, f"GET {path} answered {resp.status}"
    except ConnectionRefusedError:
        return False, f"nothing listens on {host}:{port}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {path} on {host}:{port} failed: {exc.__class__.__name__} {exc}".strip()
    finally:
        conn.close()
