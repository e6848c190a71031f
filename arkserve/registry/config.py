"""The Distribution configuration arkserve writes for its registry (``<data_dir>/run/registry.yml``).

Storage is the filesystem driver under ``<data_dir>/registry`` with deletes enabled; the registry
listens on ``registry.host:registry.port`` and trusts tokens from the API's token service
(``auth.token``: realm ``<api>/api/v1/registry/token``, the certificate in ``registry-auth/``).
``readonly`` sets ``storage.maintenance.readonly`` for garbage collection.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from arkserve.registry.tokens import ISSUER, SERVICE, ensure_signing_key
from arkserve.settings import Settings

TOKEN_PATH = "/api/v1/registry/token"  # noqa: S105 - a URL path, no secret


def storage_root(data_dir: Path) -> Path:
    return Path(data_dir) / "registry"


def config_path(data_dir: Path) -> Path:
    return Path(data_dir) / "run" / "registry.yml"


def readonly_marker(data_dir: Path) -> Path:
    """While this file exists the registry part starts read-only (garbage collection is running)."""
    return Path(data_dir) / "run" / "registry.readonly"


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
            "maintenance": {"uploadpurging": {"enabled": True, "age": "168h", "interval": "24h",
                                              "dryrun": False},
                            "readonly": {"enabled": readonly}},
        },
        "http": {"addr": f"{r.host}:{r.port}", "secret": secrets.token_hex(16),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"token": {"realm": settings.api_url + TOKEN_PATH, "service": SERVICE, "issuer": ISSUER,
                           "rootcertbundle": str(cert)}},
    }


def write(settings: Settings, *, readonly: bool = False) -> Path:
    path = config_path(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage_root(settings.data_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(render(settings, readonly=readonly), sort_keys=False))
    tmp.chmod(0o600)  # the http secret
    tmp.replace(path)
    return path
