"""What a process tree listens on, read from /proc: a real grandchild listening on a real socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve.reconciler.listening import listening_ports, process_tree, wrong_port_message
from tests.live import free_port

SERVER = """import socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
c = socket.socket()
c.bind(("127.0.0.1", 0))  # bound, not listening: not counted
print("up", flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    (tmp_path / "server.py").write_text(SERVER)
    # a shell (like a sandbox's outer process) whose child's child listens
    inner = f"'{sys.executable}' '{tmp_path / 'server.py'}' {port}; :"
    proc = subprocess.Popen(["/bin/sh", "-c", f'/bin/sh -c "{inner}"; :'], stdout=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    yield proc, port
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_the_listening_port_of_a_grandchild_is_found(tree: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = tree
    assert len(process_tree(proc.pid)) == 3
    assert listening_ports(proc.pid) == [port]  # the bound-but-not-listening socket is not counted
    message = wrong_port_message(str(proc.pid), port + 1)
    assert message == (f"the app listens on {port}, but the platform routes to $PORT={port + 1}; read the port "
                       "from the PORT environment variable")
    assert wrong_port_message(str(proc.pid), port) == ""  # it does listen where it should


def test_nothing_to_say_for_a_process_that_listens_nowhere_or_no_pid() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while not process_tree(proc.pid):
            assert time.monotonic() < deadline
        assert listening_ports(proc.pid) == [] and wrong_port_message(str(proc.pid), 1234) == ""
    finally:
        proc.kill()
        proc.wait()
    assert wrong_port_message("3f2a9c0d1e", 1234) == ""  # a container id: not ours to read
    assert listening_ports(2**22 + 12345) == []  # no such process
