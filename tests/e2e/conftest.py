"""The whole platform as a user runs it: `arkserve up` (api + gateway + reconciler processes) on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arkserve.sdk.client import ApiError, Client
from arkserve.sdk.profiles import load_all
from tests.live import free_port, gateway_port_base

APP = Path(__file__).parents[1] / "reconciler" / "app.py"


class Platform:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.app_dir = tmp / "app"
        self.app_dir.mkdir()
        shutil.copy(APP, self.app_dir / "app.py")
        self.api_port, self.admin_port = free_port(), free_port()
        self.port_base = gateway_port_base()
        self.env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "PYTHONUNBUFFERED": "1",
                    "ARKSERVE_GATEWAY_ADMIN_PORT": str(self.admin_port), "ARKSERVE_GATEWAY_WORKERS": "2"}
        self.env.pop("ARKSERVE_MASTER_KEY", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.tmp / "up.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "arkserve", "up", "--data-dir", str(self.data), "--api-port", str(self.api_port),
             "--gateway-port-base", str(self.port_base)], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while b"Press Ctrl-C to stop." not in (self.tmp / "up.log").read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("arkserve up failed:\n" + (self.tmp / "up.log").read_text())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def profile(self) -> Any:
        return load_all(self.tmp / "profiles.yaml")["default"]

    @property
    def ca(self) -> str:
        return str(self.data / "tls" / "ca.pem")

    def client(self, ak: str | None = None, sk: str | None = None) -> Client:
        p = self.profile
        return Client(p.endpoint, ak or p.access_key, sk or p.secret_key)

    def create(self, name: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "image": str(self.app_dir), "port": 8000, "command": f"{sys.executable} app.py",
                "health_path": "/healthz", "replicas": replicas, **extra}
        with self.client() as c:
            c.post("/services", body)
        return self.wait_ready(name, replicas)

    def wait_ready(self, name: str, replicas: int, timeout: float = 60) -> dict[str, Any]:
        """Until ``replicas`` instances, all ready and all of the service's current revision (so a wait right
        after an update cannot return on the old replicas), and the status says so."""
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                svc: dict[str, Any] = c.get(f"/services/{name}")
                current = all(i["revision"] == svc["revision"] for i in svc["instances"])
                if (svc["ready"] == replicas == len(svc["instances"]) and current
                        and svc["status"] in ("ready", "stopped")):
                    return svc
                if time.monotonic() > deadline:
                    raise AssertionError(f"not ready: {json.dumps(svc, indent=1)}")
                time.sleep(0.1)

    def delete_all_services(self, timeout: float = 30) -> None:
        with self.client() as c:
            self.delete_services([svc["name"] for svc in c.list_all("/services", limit=1000)], timeout)

    def delete_services(self, names: list[str], timeout: float = 30) -> None:
        """Delete and wait until they are gone (one already on its way out is not an error)."""
        with self.client() as c:
            for name in names:
                try:
                    c.delete(f"/services/{name}")
                except ApiError as exc:
                    if exc.code != "ServiceNotFound":
                        raise
            deadline = time.monotonic() + timeout
            while {s["name"] for s in c.list_all("/services", limit=1000)} & set(names) and time.monotonic() < deadline:
                time.sleep(0.2)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "arkserve", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)


@contextlib.contextmanager
def running_platform(tmp: Path) -> Iterator[Platform]:
    """`arkserve up` in ``tmp``; at the end its services are deleted and it is stopped."""
    p = Platform(tmp)
    p.start()
    try:
        yield p
    finally:
        try:
            p.delete_all_services()
        finally:
            p.stop()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with running_platform(tmp_path) as p:
        yield p
