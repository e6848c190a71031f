"""``ARKSERVE_ACCESS_KEY`` and ``ARKSERVE_SECRET_KEY`` come as a pair: one without the other is a usage error
(exit 2, nothing sent), never a silent fall back to the profile's key, which made a script meant to act as kate
act as the admin. Against a live API on loopback, with a real profiles file holding the admin's key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import LiveApi, running_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveApi, Path, tuple[str, str]]]:
    tmp = tmp_path_factory.mktemp("api")
    with running_api(tmp) as live:
        with live.client() as c:
            c.post("/users", {"username": "kate", "password": "kate-password-123", "role": "user"})
            key = c.post("/keys", {"username": "kate", "description": "scripts"})
        yield live, tmp / "profiles.yaml", (key["access_key"], key["secret_key"])


def _whoami(api: tuple[LiveApi, Path, tuple[str, str]], **env: str) -> subprocess.CompletedProcess[str]:
    live, profiles, _ = api
    base = {k: v for k, v in os.environ.items() if k not in ("ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY")}
    return subprocess.run([sys.executable, "-m", "arkserve", "whoami", "-o", "json"], capture_output=True, text=True,
                          timeout=60, env={**base, "ARKSERVE_CLI_CONFIG": str(profiles),
                                           "ARKSERVE_ENDPOINT": live.url, **env})


def test_the_profile_is_used_without_env_credentials_and_the_pair_overrides_it(api: tuple[LiveApi, Path,
                                                                                           tuple[str, str]]) -> None:
    r = _whoami(api)
    assert r.returncode == 0 and '"username": "admin"' in r.stdout, r.stderr
    ak, sk = api[2]
    r = _whoami(api, ARKSERVE_ACCESS_KEY=ak, ARKSERVE_SECRET_KEY=sk)
    assert r.returncode == 0 and '"username": "kate"' in r.stdout, r.stderr


@pytest.mark.parametrize("given", ["ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY"])
def test_half_a_pair_exits_2_and_names_the_missing_variable(api: tuple[LiveApi, Path, tuple[str, str]],
                                                            given: str) -> None:
    ak, sk = api[2]
    r = _whoami(api, **{given: ak if given == "ARKSERVE_ACCESS_KEY" else sk})
    missing = ({"ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY"} - {given}).pop()
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""  # nothing was sent: no whoami, neither kate's nor the admin's
    assert f"Error: {given} is set but {missing} is not: set both" in r.stderr, r.stderr
