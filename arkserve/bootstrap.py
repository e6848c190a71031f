"""First start and every start: data dir, master key, schema, seed data, the admin and their first key.

Idempotent: a second start finds everything in place and changes nothing; credentials
survive restarts. The admin's generated password is written to ``<data_dir>/admin-password``
(0600); the first access key is written into the CLI profile so the CLI works at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from arkserve.auth import keys as key_service
from arkserve.auth import passwords
from arkserve.auth.vault import MasterKey, load_master_key, write_secret_file
from arkserve.sdk import profiles
from arkserve.settings import Settings
from arkserve.store import instance_types
from arkserve.store import keys as key_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, open_store

ADMIN = "admin"
PASSWORD_FILE = "admin-password"  # noqa: S105 (a file name)


@dataclass(frozen=True)
class Bootstrap:
    store: Store
    master: MasterKey
    admin_password: str | None  # only on the start that created the admin
    access_key: str
    secret_key: str
    first_start: bool
    profile_path: Path


def detect_gpus() -> list[str]:
    """GPU model names on this host (``nvidia-smi``), empty when there are none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def prepare(settings: Settings, env: dict[str, str] | None = None) -> Bootstrap:
    env = dict(os.environ if env is None else env)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    master = load_master_key(data_dir, env.get("ARKSERVE_MASTER_KEY"))
    store = open_store(settings.database_url, busy_timeout_ms=settings.store.busy_timeout_ms)
    admin_password: str | None = None
    with store.begin() as conn:
        instance_types.seed(conn, detect_gpus())
        first_start = user_store.count(conn) == 0
        if first_start:
            admin_password = passwords.generate_password()
            admin = user_store.create(conn, ADMIN, passwords.hash_password(admin_password), "admin")
            ak, sk = key_service.issue(conn, master, admin.id, "created by arkserve up")
            write_secret_file(data_dir / PASSWORD_FILE, admin_password + "\n")
        else:
            admin = user_store.find(conn, ADMIN) or next(u for u in user_store.list_all(conn) if u.is_admin)
            existing = [k for k in key_store.list_keys(conn, admin.id) if k.enabled]
            if existing:
                ak = existing[0].access_key
                sk = key_service.reveal(conn, master, ak)
            else:
                ak, sk = key_service.issue(conn, master, admin.id, "created by arkserve up")
        path = profiles.config_path(env)
        current = profiles.load_all(path).get("default")
        # Write the profile when there is none, or when it points at this API with a key this store lacks
        # (the data dir was wiped). A profile for another endpoint is the user's and stays untouched.
        stale = current is not None and current.endpoint == settings.api_url and \
            key_store.find(conn, current.access_key) is None
        if current is None or stale:
            ca = str(data_dir / "tls" / "ca.pem") if settings.gateway.tls and not settings.gateway.tls_cert else ""
            profiles.save(path, "default", profiles.Profile(settings.api_url, ak, sk, ca))
    return Bootstrap(store, master, admin_password, ak, sk, first_start, path)
