"""What a replica's processes listen on, read from ``/proc`` (Linux): the "app ignores ``$PORT``" diagnosis.

A local replica is a process tree on this host (inside a sandbox it is the sandbox's outer process and
its descendants, which the host sees under their host pids); its id is also its process group's, so once
that outer process is gone (the runtime drops bwrap's monitor, runtimes/detach.py) the tree is the group's.
When nothing listens on the port the platform gave it, the reconciler asks :func:`listening_ports` what the
tree listens on instead: the TCP sockets in state LISTEN of ``/proc/<pid>/net/tcp{,6}`` (read through each
process, so a network namespace of its own is seen too) whose inode is one of the tree's open sockets
(``/proc/<pid>/fd``). Processes that are gone or not ours to read are skipped; the answer is then simply shorter.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"
_MAX_PROCESSES = 512


def group_members(pgid: int, proc: Path = PROC) -> list[int]:
    """The processes of process group ``pgid`` (a scan of ``/proc``)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for entry in proc.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                        found.append(int(entry.name))
    return sorted(found)


def process_tree(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and its descendants, parents first (from ``/proc/<pid>/task/*/children``); where ``pid`` is
    gone, the members of process group ``pid`` and their descendants."""
    seen: list[int] = []
    todo = [pid] if (proc / str(pid)).is_dir() else group_members(pid, proc)
    while todo and len(seen) < _MAX_PROCESSES:
        current = todo.pop(0)
        if current in seen or not (proc / str(current)).is_dir():
            continue
        seen.append(current)
        with contextlib.suppress(OSError):
            for task in (proc / str(current) / "task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return seen


def socket_inodes(pid: int, proc: Path = PROC) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes: set[int] = set()
    fd_dir = proc / str(pid) / "fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                target = os.readlink(fd_dir / fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def listening_sockets(table: str) -> dict[int, int]:
    """inode -> local port of the LISTEN rows of a ``/proc/net/tcp`` or ``tcp6`` table."""
    found: dict[int, int] = {}
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != _LISTEN:
            continue
        with contextlib.suppress(ValueError):
            found[int(cols[9])] = int(cols[1].rsplit(":", 1)[1], 16)
    return found


def listening_ports(pid: int, proc: Path = PROC) -> list[int]:
    """TCP ports that ``pid`` or any of its descendants listens on, sorted."""
    ports: set[int] = set()
    tables: dict[str, dict[int, int]] = {}  # per network namespace
    for member in process_tree(pid, proc):
        inodes = socket_inodes(member, proc)
        if not inodes:
            continue
        try:
            netns = os.readlink(proc / str(member) / "ns" / "net")
        except OSError:
            netns = f"pid:{member}"
        if netns not in tables:
            table: dict[int, int] = {}
            for name in ("tcp", "tcp6"):
                with contextlib.suppress(OSError):
                    table.update(listening_sockets((proc / str(member) / "net" / name).read_text()))
            tables[netns] = table
        ports.update(port for inode, port in tables[netns].items() if inode in inodes)
    return sorted(ports)


def wrong_port_message(runtime_id: str, port: int) -> str:
    """The diagnosis for a replica whose process tree (host pid ``runtime_id``) listens, but not on ``port``;
    empty when it is not a pid, listens nowhere (still starting) or does listen on ``port``."""
    if not runtime_id.isdigit():
        return ""
    ports = listening_ports(int(runtime_id))
    if not ports or port in ports:
        return ""
    listed = ", ".join(str(p) for p in ports)
    return (f"the app listens on {listed}, but the platform routes to $PORT={port}; read the port from the PORT "
            "environment variable")
