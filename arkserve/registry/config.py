"""The Distribution configuration arkserve writes for its registry (``<data_dir>/run/registry.yml``).

Storage is the filesystem driver under ``<data_dir>/registry`` with deletes enabled; the registry
listens on ``registry.host:registry.port`` and trusts tokens from the API's token service
(``auth.token``: realm ``<api>/api/v1/registry/token``, the certificate in ``registry-auth/``).
``readonly`` sets ``storage.maintenance.readonly`` for garbage collection. Unfinished blob uploads are purged
by the registry ``UPLOAD_MAX_AGE_H`` after they began (Distribution's default is a week).

The running registry part rewrites ``run/registry.yml`` at each start, from ``arkserve up``'s own settings,
so ``running_addr`` (its ``http.addr``) is where the registry that runs now listens, whatever the shell
asking has in its environment. ``run/registry.lock`` is held exclusively by a garbage collection (and
the ``garbage-collect`` process it starts) and shared by a backup copying the storage: the kernel lets
go of it however they end, so a read-only marker nobody holds it for is a leftover (``gc_running``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from arkserve.registry.tokens import ISSUER, SERVICE, ensure_signing_key
from arkserve.settings import Settings

TOKEN_PATH = "/api/v1/registry/token"  # noqa: S105 - a URL path, no secret
# an upload begun this long ago is purged by the registry (it counts against its namespace's quota until then);
# `image gc` removes one nobody has written to for this long
UPLOAD_MAX_AGE_H = 24


def storage_root(data_dir: Path) -> Path:
    return Path(data_dir) / "registry"


def config_path(data_dir: Path) -> Path:
    return Path(data_dir) / "run" / "registry.yml"


def readonly_marker(data_dir: Path) -> Path:
    """While this file exists the registry part starts read-only (garbage collection is running)."""
    return Path(data_dir) / "run" / "registry.readonly"


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / "run" / "registry.lock"


def take_lock(data_dir: Path, *, exclusive: bool) -> int | None:
    """An open descriptor holding ``run/registry.lock`` (close it to let go), or None while someone else holds
    it in a way that excludes this: a garbage collection (exclusive) excludes everyone, a backup (shared) only
    a garbage collection. Raises OSError when the run directory cannot be written."""
    path = lock_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def gc_running(data_dir: Path) -> bool:
    """Whether a garbage collection holds ``run/registry.lock`` now."""
    try:
        fd = os.open(lock_path(data_dir), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def running_config(data_dir: Path) -> dict[str, Any]:
    """``run/registry.yml`` as the registry part last wrote it ({} when there is none or it does not parse)."""
    with contextlib.suppress(OSError, yaml.YAMLError):
        cfg = yaml.safe_load(config_path(data_dir).read_text())
        if isinstance(cfg, dict):
            return cfg
    return {}


def running_addr(data_dir: Path, settings: Settings) -> tuple[str, int]:
    """(host, port) to reach the registry at: its ``http.addr`` in ``run/registry.yml``, a wildcard as
    127.0.0.1; ``settings`` only when that file says nothing usable."""
    addr = str(running_config(data_dir).get("http", {}).get("addr", ""))
    host, _, port = addr.rpartition(":")
    if not port.isdigit():
        host, port = settings.registry.host, str(settings.registry.port)
    host = host.strip("[]")
    return ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host), int(port)  # noqa: S104 - reached locally


def running_readonly(data_dir: Path) -> bool:
    """Whether the registry part last started read-only."""
    maintenance = running_config(data_dir).get("storage", {}).get("maintenance", {})
    return bool(maintenance.get("readonly", {}).get("enabled", False))


def render(settings: Settings, *, readonly: bool = False) -> dict[str, Any]:
    _, cert = ensure_signing_key(settings.data_dir)
    r = settings.registry
    return {
        "version": 0.1,
        "log": {"level": "info" if settings.log_level != "debug" else "debug", "formatter": "text",
                "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage_root(settings.data_dir))},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": True, "age": f"{UPLOAD_MAX_AGE_H}h",
                                              "interval": "1h", "dryrun": False},
                            "readonly": {"enabled": readonly}},
        },
        "http": {"addr": f"{r.host}:{r.port}", "secret": secrets.token_hex(16),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"token": {"realm": settings.api_url + TOKEN_PATH, "service": SERVICE, "issuer": ISSUER,
                           "rootcertbundle": str(cert)}},
    }


def write(settings: Settings, *, readonly: bool = False, path: Path | None = None) -> Path:
    """Write the configuration to ``path`` (default ``run/registry.yml``, the registry part's own)."""
    path = path or config_path(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage_root(settings.data_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(render(settings, readonly=readonly), sort_keys=False))
    tmp.chmod(0o600)  # the http secret
    tmp.replace(path)
    return path
