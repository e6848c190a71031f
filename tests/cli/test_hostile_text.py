"""Text stored by others reaches an admin's terminal as plain, inert text: never read as Rich markup (``[/x]``
ended the command with a traceback, ``[link=…]`` planted a hyperlink) and with its control characters shown as
``\\xNN`` (an OSC 52 in a failed login's username set the admin's clipboard). ``-o json`` stays exact, and
``service logs`` piped gives the app's bytes as they are.

Against a live API on loopback: the failed login, the key and the service are made through it; the reconciler's
and the gateway's records (an event, a request, a log file) are written as those parts write them. The CLI runs
as a subprocess, piped or on a pseudo-terminal (click and Rich behave differently on a terminal)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import tarfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkserve.logs import LogWriter, log_path
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.db import open_store
from tests.api.conftest import LiveApi, running_api

OSC52 = "\x1b]52;c;aGk=\x07"  # sets the clipboard to "hi" on terminals that allow it
HOSTILE = f"[/x]{OSC52}[link=https://evil.example]L[/link]"
SHOWN = "[/x]\\x1b]52;c;aGk=\\x07[link=https://evil.example]L[/link]"  # what the terminal must get instead
SPEC = {"image": "/usr/bin", "port": 27777, "instance_type": "cpu.small", "replicas": 0}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveApi, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    with running_api(tmp) as live:
        r = httpx.post(f"{live.url}/api/v1/session", json={"username": HOSTILE, "password": "whatever"})
        assert r.status_code == 401, r.text  # anyone, no account: the failed login is a security event
        with live.client() as c:
            c.post("/keys", {"description": HOSTILE})
            c.post("/services", {**SPEC, "name": "hostile", "command": f"python3 app.py {HOSTILE}"})
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("w.bin")
                info.size = 2
                tar.addfile(info, io.BytesIO(b"hi"))
            c.upload("PUT", "/models/hostile/versions/1/archive", [archive.getvalue()],
                     params={"framework": f"{OSC52}fw", "description": f"card {HOSTILE}"},
                     content_type="application/x-tar")
        store = open_store(live.database_url or f"sqlite:///{live.data_dir}/arkserve.db", migrate_schema=False)
        try:
            with store.begin() as conn:  # what the reconciler records of a crash and the gateway of a call
                service_store.set_status(conn, service_store.get(conn, "hostile").id, "failed", "CrashLoop",
                                         f"replica r1 exited with code 3; last output: {HOSTILE}")
                event_store.record(conn, "hostile", "crashed", f"replica r1: exited with code 3; last output: "
                                                              f"{HOSTILE}", replica="r1")
                event_store.insert_requests(conn, [dict(
                    time=time.time(), service="hostile", replica="r1", method="GET", path=f"/{HOSTILE}",
                    status=401, latency_ms=1.0, bytes_in=0, bytes_out=0, access_key="", client="127.0.0.1",
                    request_id="req-1")])
        finally:
            store.dispose()
        writer = LogWriter(log_path(live.data_dir / "logs", "hostile", "r1"), "r1")  # as the runtime writes it
        writer.write(f"start \x1b[31mRED\x1b[0m \x1b]0;TITLE\x07 {HOSTILE} 50%\r100% end")
        writer.close()
        yield live, tmp / "profiles.yaml"


def _env(api: tuple[LiveApi, Path]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY")}
    return {**base, "ARKSERVE_CLI_CONFIG": str(api[1]), "ARKSERVE_ENDPOINT": api[0].url}


def _piped(api: tuple[LiveApi, Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arkserve", *args], capture_output=True, text=True, timeout=60,
                          env=_env(api))


def _tty(api: tuple[LiveApi, Path], *args: str) -> tuple[int, str]:
    """Run on a pseudo-terminal 400 columns wide (stdout and stderr); its exit code and all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
    env = {k: v for k, v in _env(api).items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
    proc = subprocess.Popen([sys.executable, "-m", "arkserve", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm-256color"})
    os.close(slave)
    out = bytearray()
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not data:
                break
            out += data
    finally:
        os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


def _inert(out: str) -> None:
    assert "\x07" not in out and "\x1b]" not in out, repr(out)  # no BEL, no OSC (clipboard, title, hyperlink)
    assert "\x1b[2J" not in out and "\x1b[8m" not in out, repr(out)


def test_security_events_show_a_failed_logins_username_as_text_and_json_keeps_it_exact(
        api: tuple[LiveApi, Path]) -> None:
    r = _piped(api, "user", "security-events")
    assert r.returncode == 0, r.stderr  # it was a Rich MarkupError: a traceback, exit 1, no rows
    assert SHOWN in r.stdout and "\x1b" not in r.stdout, r.stdout
    code, out = _tty(api, "user", "security-events")
    assert code == 0 and SHOWN in out, out
    _inert(out)
    r = _piped(api, "user", "security-events", "-o", "json")
    assert HOSTILE in [e["username"] for e in json.loads(r.stdout)]  # the data itself, byte for byte


@pytest.mark.parametrize("args", [("key", "list", "--all"), ("service", "requests", "hostile")],
                         ids=["key-list", "service-requests"])
def test_rich_tables_print_stored_text_literally(api: tuple[LiveApi, Path], args: tuple[str, ...]) -> None:
    r = _piped(api, *args)
    assert r.returncode == 0 and SHOWN in r.stdout and "\x1b" not in r.stdout, r.stdout + r.stderr
    code, out = _tty(api, *args)
    assert code == 0 and SHOWN in out, out
    _inert(out)


@pytest.mark.parametrize("args", [("service", "events", "hostile"), ("service", "get", "hostile"),
                                  ("model", "show", "hostile"), ("model", "list")],
                         ids=["service-events", "service-get", "model-show", "model-list"])
def test_plain_lines_show_control_characters_escaped_on_a_terminal(api: tuple[LiveApi, Path],
                                                                   args: tuple[str, ...]) -> None:
    code, out = _tty(api, *args)  # click removes ANSI only when piped, never an OSC
    assert code == 0, out
    _inert(out)
    assert "\\x1b]52;c;aGk=\\x07" in out, out


def test_service_logs_keep_colours_on_a_terminal_and_every_byte_when_piped(api: tuple[LiveApi, Path]) -> None:
    code, out = _tty(api, "service", "logs", "hostile")
    assert code == 0, out
    _inert(out)
    assert f"start \x1b[31mRED\x1b[0m \\x1b]0;TITLE\\x07 {SHOWN} 50%\\x0d100% end" in out, repr(out)
    r = subprocess.run([sys.executable, "-m", "arkserve", "service", "logs", "hostile"], capture_output=True,
                       timeout=60, env=_env(api))  # bytes: text mode would turn the \r into \n
    assert r.returncode == 0 and r.stdout.endswith(  # like `docker logs`: for files and other programs, exact
        f" r1 start \x1b[31mRED\x1b[0m \x1b]0;TITLE\x07 {HOSTILE} 50%\r100% end\n".encode()), repr(r.stdout)


def test_an_error_message_from_the_server_is_escaped(api: tuple[LiveApi, Path]) -> None:
    r = _piped(api, "async", "get", f"nope{OSC52}")  # 404: 'asynchronous request "nope…" not found'
    assert r.returncode == 1 and '"nope\\x1b]52;c;aGk=\\x07" not found' in r.stderr, r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr, r.stderr
