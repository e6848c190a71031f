"""CLI/SDK profiles: where the API is and which key to sign with.

Profiles live in ``~/.config/arkserve/profiles.yaml`` (or ``ARKSERVE_CLI_CONFIG``),
mode 0600 since they hold secret keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Profile:
    endpoint: str
    access_key: str
    secret_key: str
    ca_bundle: str = ""  # CA that signed the gateway certificate (for `arkserve invoke`)


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("ARKSERVE_CLI_CONFIG"):
        return Path(env["ARKSERVE_CLI_CONFIG"]).expanduser()
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "arkserve" / "profiles.yaml"


def load_all(path: Path) -> dict[str, Profile]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    profiles = data.get("profiles", {}) if isinstance(data, dict) else {}
    return {
        name: Profile(**{k: str(v) for k, v in p.items() if k in Profile.__dataclass_fields__})
        for name, p in profiles.items()
        if isinstance(p, dict)
    }


def save(path: Path, name: str, profile: Profile) -> None:
    profiles = load_all(path)
    profiles[name] = profile
    text = yaml.safe_dump({"profiles": {n: asdict(p) for n, p in profiles.items()}}, sort_keys=True)
    from arkserve.auth.vault import write_secret_file  # here: the vault's cryptography costs every CLI start

    write_secret_file(path, text)
