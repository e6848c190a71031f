"""The flowers walkthrough against a platform on the other runtime: run.sh says so before building anything,
and the API's refusal of an image reference on the local runtime names `--runtime docker`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from arkserve.sdk.client import ApiError, Client
from arkserve.sdk.profiles import config_path, load_all
from tests.cli.test_first_contact import _api, _env
from tests.examples.flowers_support import FLOWERS


def test_run_sh_docker_against_a_local_runtime_platform_says_what_to_do(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert subprocess.run([sys.executable, "-m", "arkserve", "init"], env=env, capture_output=True).returncode == 0
    env = {**env, "ARKSERVE_BIN": str(Path(sys.executable).with_name("arkserve")), "ARKSERVE_PYTHON": sys.executable,
           "FLOWERS_PLATFORM": "profile"}
    with _api(env, tmp_path / "api.out") as url:
        assert httpx.get(f"{url}/api/v1/healthz").json()["runtime"] == "local"
        t0 = time.monotonic()
        done = subprocess.run([str(FLOWERS / "run.sh"), "docker"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert time.monotonic() - t0 < 60  # before any build
        err = done.stderr
        assert "runs the local runtime, but 'run.sh docker' needs the docker runtime" in err
        assert "examples/flowers/run.sh local" in err and "arkserve up --runtime docker" in err
        assert "FLOWERS_PLATFORM=own" in err and "build" not in done.stdout + err.split("run.sh: the platform")[0]
        # the by-hand path: the image reference is refused with the fix in the message
        profile = load_all(config_path(env))["default"]
        with Client(profile.endpoint, profile.access_key, profile.secret_key) as c, \
                pytest.raises(ApiError) as info:
            c.post("/services", {"name": "flowers", "image": "arkserve-examples/flowers:1", "port": 27777,
                                 "command": "python3 infer.py"})
        assert info.value.status == 422 and info.value.code == "ValidationFailed"
        assert "`arkserve up --runtime docker`" in info.value.message
