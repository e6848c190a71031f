"""`arkserve up` as a newcomer runs it: banner, CLI profile, restart keeps everything, SIGKILL loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import free_port, gateway_port_base


class Up:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "PYTHONUNBUFFERED": "1",
                    "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port()),
                    "ARKSERVE_GATEWAY_PORT_BASE": str(gateway_port_base())}
        self.env.pop("ARKSERVE_MASTER_KEY", None)
        self.proc: subprocess.Popen[str] | None = None

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()

    def start(self, *extra: str) -> str:
        self.close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arkserve", "up", "--data-dir", str(self.tmp / "data"), "--api-port",
             str(self.port), *extra], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                return "".join(lines)
        raise AssertionError("arkserve up did not come up:\n" + "".join(lines))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "arkserve", *args], env=self.env, capture_output=True,
                             text=True, timeout=60)
        if check:
            assert res.returncode == 0, res.stderr
        return res

    def api_children(self) -> list[int]:
        return _pids_with(f"ARKSERVE_API_PORT={self.port}".encode(), b"arkserve\x00api")


def _pids_with(environ: bytes, cmdline: bytes = b"") -> list[int]:
    """Processes whose environment holds ``environ`` and whose argv holds ``cmdline``."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if (environ in Path(f"/proc/{pid}/environ").read_bytes()
                    and cmdline in Path(f"/proc/{pid}/cmdline").read_bytes()):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path)
    yield u
    u.close()
    for pid in u.api_children():
        os.kill(pid, signal.SIGKILL)


def _wait_gone(pids_of, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while pids_of() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_of() == []


def test_first_start_prints_everything_a_newcomer_needs(up: Up) -> None:
    banner = up.start()
    data = up.tmp / "data"
    password = (data / "admin-password").read_text().strip()
    assert f"http://127.0.0.1:{up.port}/api/v1" in banner
    assert password in banner and "admin" in banner
    assert (data / "admin-password").stat().st_mode & 0o777 == 0o600
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    assert (up.tmp / "profiles.yaml").stat().st_mode & 0o777 == 0o600
    who = "as nobody" if os.geteuid() == 0 else "as this OS user"  # root's replicas drop to runtime.replica_user
    assert f"each in a bubblewrap sandbox {who}" in banner
    me = json.loads(up.cli("whoami", "-o", "json").stdout)
    assert me["username"] == "admin" and me["access_key"] in banner
    keys = json.loads(up.cli("keys", "list", "-o", "json").stdout)  # plural alias
    assert [k["access_key"] for k in keys] == [me["access_key"]]
    assert "access_key:" in up.cli("key", "list", "-o", "yaml").stdout
    missing = up.cli("user", "get", "ghost", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr and "UserNotFound" in missing.stderr


def test_sigterm_stops_every_part_and_restart_keeps_state(up: Up) -> None:
    up.start()
    up.cli("user", "create", "bob", "--password", "bob-password")
    ak = json.loads(up.cli("whoami", "-o", "json").stdout)["access_key"]
    password = (up.tmp / "data" / "admin-password").read_text()
    assert up.api_children()
    assert up.proc is not None
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=30) == 0
    _wait_gone(up.api_children)
    banner = up.start()
    assert "password:" not in banner  # not regenerated
    assert (up.tmp / "data" / "admin-password").read_text() == password
    assert json.loads(up.cli("whoami", "-o", "json").stdout)["access_key"] == ak
    assert "bob" in up.cli("users", "list").stdout


def test_sigkill_loses_nothing_acknowledged(up: Up) -> None:
    up.start()
    for i in range(5):
        up.cli("user", "create", f"user{i}", "--password", "long-password")
    made = json.loads(up.cli("key", "create", "--description", "before kill", "-o", "json").stdout)
    assert up.proc is not None
    os.kill(up.proc.pid, signal.SIGKILL)
    up.proc.wait()
    _wait_gone(up.api_children)  # children die with their parent
    up.start()
    users = {u["username"] for u in json.loads(up.cli("user", "list", "-o", "json").stdout)}
    assert {f"user{i}" for i in range(5)} <= users
    keys = json.loads(up.cli("key", "list", "-o", "json").stdout)
    assert made["access_key"] in {k["access_key"] for k in keys}


def test_master_key_rotation_keeps_every_key_working(up: Up) -> None:
    up.start()
    made = json.loads(up.cli("key", "create", "-o", "json").stdout)
    old_key = (up.tmp / "data" / "master.key").read_text()
    assert up.proc is not None
    up.proc.send_signal(signal.SIGTERM)
    up.proc.wait(30)
    _wait_gone(up.api_children)
    res = up.cli("master-key", "rotate", "--data-dir", str(up.tmp / "data"))
    assert "re-wrapped 2 secret(s)" in res.stdout
    assert (up.tmp / "data" / "master.key").read_text() != old_key
    assert (up.tmp / "data" / "master.key.old").read_text() == old_key
    up.start()
    me = json.loads(up.cli("whoami", "-o", "json").stdout)  # the profile's key still verifies
    assert me["username"] == "admin"
    password = (up.tmp / "data" / "admin-password").read_text().strip()
    shown = json.loads(up.cli("key", "reveal", made["access_key"], "--password", password, "-o", "json").stdout)
    assert shown["secret_key"] == made["secret_key"]


def test_a_second_up_on_a_taken_port_refuses_before_starting_anything(up: Up, tmp_path: Path) -> None:
    up.start()
    children = up.api_children()
    other = tmp_path / "other"
    env = {**up.env, "ARKSERVE_CLI_CONFIG": str(other / "profiles.yaml")}
    res = subprocess.run([sys.executable, "-m", "arkserve", "up", "--data-dir", str(other / "data"),
                          "--api-port", str(up.port)], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert f"the API port 127.0.0.1:{up.port} is not free" in res.stderr and "another arkserve" in res.stderr
    assert "Press Ctrl-C" not in res.stdout and not (other / "data").exists()
    assert up.api_children() == children  # the first one is untouched
    assert json.loads(up.cli("whoami", "-o", "json").stdout)["username"] == "admin"


def _replica_pids(service: str) -> list[int]:
    """Processes started for ``service`` by the local runtime (they carry ARK_SERVICE in their env)."""
    return _pids_with(f"ARK_SERVICE={service}\0".encode())


def _stop(up: Up) -> None:
    assert up.proc is not None
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=30) == 0


def _ready_replicas(up: Up, name: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        svc = json.loads(up.cli("service", "get", name, "-o", "json").stdout)
        if svc["ready"] == 1 and svc["status"] == "ready":
            return [i["id"] for i in svc["instances"]]
        assert time.monotonic() < deadline, svc
        time.sleep(0.3)


def test_ctrl_c_stops_the_replicas_too_unless_asked_to_keep_them(up: Up) -> None:
    app = up.tmp / "app"
    app.mkdir()
    up.start()
    name = "exit-check"
    up.cli("service", "create", name, "--image", str(app), "--port", "8000",
           "--command", f"{sys.executable} -m http.server $PORT --bind 127.0.0.1")
    first = _ready_replicas(up, name)
    assert _replica_pids(name)
    _stop(up)
    _wait_gone(lambda: _replica_pids(name))  # Ctrl-C stops everything, the app included

    up.start("--keep-replicas")
    second = _ready_replicas(up, name)
    assert second != first  # created anew, not counted as a crash
    svc = json.loads(up.cli("service", "get", name, "-o", "json").stdout)
    assert svc["instances"][0]["restarts"] == 0
    events = up.cli("service", "events", name).stdout
    assert "arkserve is shutting down: 1 replica(s) stopped" in events
    _stop(up)
    kept = _replica_pids(name)
    assert kept  # --keep-replicas: still serving while the platform is down

    up.start()
    assert _ready_replicas(up, name) == second  # adopted
    assert _replica_pids(name) == kept
    _stop(up)
    _wait_gone(lambda: _replica_pids(name))
