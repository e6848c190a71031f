"""The platform registry with real parts: the API (in a thread), the real ``docker-registry`` process
(``arkserve registry``), the real dockerd with ``docker login/push/pull`` as separate users (one
``DOCKER_CONFIG`` each), and, for services, a real reconciler on the Docker runtime and a real gateway.

Without the ``docker-registry`` binary (Debian package ``docker-registry``) the tests skip, unless
``ARKSERVE_REQUIRE_REGISTRY=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.auth import keys as key_service
from arkserve.auth import passwords
from arkserve.bootstrap import prepare
from arkserve.reconciler.loop import Reconciler
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.docker import DockerRuntime
from arkserve.sdk.client import Client
from arkserve.settings import Settings
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.supervisor import Child, Supervisor, run_file
from tests.live import free_port, gateway_port_base, serve, server_port
from tests.reconciler.conftest import FAST
from tests.required import unavailable
from tests.runtimes.conftest import DOCKER_INSTANCE, TEST_IMAGE, docker_daemon

__all__ = ["TEST_IMAGE", "docker_daemon"]

REGISTRY_BINARY = "/usr/bin/docker-registry"
PASSWORD = "correct-horse-battery"


def wait_for(what: str, cond: Callable[[], object], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Account:
    name: str
    password: str
    ak: str
    sk: str
    docker_config: Path


@dataclass
class Stack:
    tmp: Path
    settings: Settings
    store: Store
    master: Any
    api_url: str
    env: dict[str, str]
    accounts: dict[str, Account] = field(default_factory=dict)
    pushed: set[str] = field(default_factory=set)

    @property
    def address(self) -> str:
        return self.settings.registry_address

    def add_user(self, name: str, role: str = "user") -> Account:
        with self.store.begin() as conn:
            user = user_store.find(conn, name) or user_store.create(conn, name, passwords.hash_password(PASSWORD),
                                                                     role)
            ak, sk = key_service.issue(conn, self.master, user.id, "registry tests")
        cfg = self.tmp / f"docker-{name}"
        cfg.mkdir(exist_ok=True)
        self.accounts[name] = Account(name, PASSWORD, ak, sk, cfg)
        return self.accounts[name]

    def client(self, who: str) -> Client:
        a = self.accounts[who]
        return Client(self.api_url, a.ak, a.sk)

    def docker(self, who: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_CONFIG": str(self.accounts[who].docker_config)}
        return subprocess.run(["docker", *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)

    def login(self, who: str, *, with_key: bool = False,
              password: str | None = None) -> subprocess.CompletedProcess[str]:
        a = self.accounts[who]
        user, secret = (a.ak, a.sk) if with_key else (a.name, a.password if password is None else password)
        return self.docker(who, "login", self.address, "-u", user, "--password-stdin", stdin=secret + "\n")

    def push(self, who: str, repo_tag: str, source: str = TEST_IMAGE) -> subprocess.CompletedProcess[str]:
        """Tag ``source`` as ``<registry>/<repo_tag>`` and push it as ``who``."""
        ref = f"{self.address}/{repo_tag}"
        subprocess.run(["docker", "tag", source, ref], check=True, capture_output=True)
        self.pushed.add(ref)
        return self.docker(who, "push", ref)

    def pull(self, who: str, repo_tag: str) -> subprocess.CompletedProcess[str]:
        ref = f"{self.address}/{repo_tag}"
        subprocess.run(["docker", "rmi", ref], capture_output=True)  # from the registry, not the local cache
        self.pushed.add(ref)
        return self.docker(who, "pull", ref)

    def blob_bytes(self) -> int:
        root = self.settings.data_dir / "registry" / "docker/registry/v2/blobs"
        return sum(p.stat().st_size for p in root.rglob("data") if p.is_file())

    def registry_client(self, who: str, repo: str) -> httpx.Client:
        """An HTTP client of the registry itself with a pull,push token for ``repo``, as ``who`` (by password)."""
        token = httpx.get(f"{self.api_url}/api/v1/registry/token", auth=(who, PASSWORD),
                          params={"service": "arkserve-registry", "scope": f"repository:{repo}:pull,push"})
        assert token.status_code == 200, token.text
        return httpx.Client(base_url=f"http://{self.address}", timeout=60, trust_env=False,
                            headers={"Authorization": f"Bearer {token.json()['token']}"})

    @contextmanager
    def reconciler(self) -> Iterator[Reconciler]:
        """A real reconciler on the Docker runtime, pulling with the platform's tokens, running until the end of
        the block (its replicas stopped then)."""
        s = self.settings
        runtime = DockerRuntime(s.data_dir, instance=DOCKER_INSTANCE)
        rec = Reconciler(self.store, runtime, s.data_dir, FAST,
                         registry=RegistryPulls(self.address, s.data_dir, s.registry.token_ttl_s))
        thread = threading.Thread(target=rec.run, daemon=True)
        thread.start()
        try:
            yield rec
        finally:
            rec.stop_event.set()
            thread.join(30)
            rec.stop()
            rec.stop_all_replicas(grace_s=0)
            runtime.close()


def _registry_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/", timeout=1.0).status_code == 401
    except httpx.HTTPError:
        return False


@contextmanager
def registry_part(s: Settings, env: dict[str, str]) -> Iterator[Supervisor]:
    """``arkserve registry`` under the real supervisor of ``arkserve up`` (restarts, ``run/up.json``)."""
    sup = Supervisor([Child("registry", ["registry"], stop_timeout_s=10)], env, say=lambda _line: None,
                     state_file=run_file(s.data_dir))
    sup.start()
    watcher = threading.Thread(target=sup.watch, kwargs={"interval": 0.1}, daemon=True)
    watcher.start()
    try:
        wait_for("the registry", lambda: _registry_up(f"http://{s.registry.host}:{s.registry.port}"), timeout=30)
        yield sup
    finally:
        sup.stop()
        watcher.join(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_daemon: None) -> Iterator[Stack]:
    if not (Path(REGISTRY_BINARY).is_file() and os.access(REGISTRY_BINARY, os.X_OK)):
        unavailable("ARKSERVE_REQUIRE_REGISTRY", f"no {REGISTRY_BINARY} (apt-get install docker-registry)")
    tmp = tmp_path_factory.mktemp("registry")
    api_port = free_port()
    env = {"ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp / "data"), "api.port": api_port, "registry.port": server_port(),
                           "runtime.kind": "docker", "gateway.port_base": gateway_port_base(),
                           "gateway.tls": False, "gateway.admin_port": free_port()}, env=env)
    boot = prepare(s, env=env)
    child_env = {**os.environ, **settings_mod.to_env(s), **env, "ARKSERVE_DATA_DIR": str(s.data_dir)}
    child_env.pop("ARKSERVE_MASTER_KEY", None)
    with serve(create_app(s, boot.store, boot.master), port=api_port) as url, \
            registry_part(s, child_env):
        st = Stack(tmp, s, boot.store, boot.master, url, child_env)
        st.accounts["admin"] = Account("admin", boot.admin_password or "", boot.access_key, boot.secret_key,
                                       tmp / "docker-admin")
        st.accounts["admin"].docker_config.mkdir()
        try:
            yield st
        finally:
            for ref in st.pushed:
                subprocess.run(["docker", "rmi", ref], capture_output=True)
            boot.store.dispose()
    for a in st.accounts.values():
        shutil.rmtree(a.docker_config, ignore_errors=True)
