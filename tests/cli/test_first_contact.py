"""Small things a first user hits: negative replica counts reach the range check, `key list` shows no column
of asterisks, and the API's access log goes to a file under the data dir unless asked for on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from arkserve.cli.main import cli
from tests.live import free_port


def test_a_negative_replica_count_reaches_the_range_check() -> None:
    result = CliRunner().invoke(cli, ["service", "scale", "hello", "-1"])
    assert result.exit_code == 2
    assert "No such option" not in result.output
    assert "-1 is not in the range 0<=x<=1000" in result.output


def _env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "ARKSERVE_DATA_DIR": str(tmp / "data"), "ARKSERVE_API_PORT": str(free_port()),
           "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "PYTHONUNBUFFERED": "1"}
    for name in ("ARKSERVE_MASTER_KEY", "ARKSERVE_API_ACCESS_LOG", "ARKSERVE_PROFILE", "ARKSERVE_ENDPOINT"):
        env.pop(name, None)
    return env


@contextmanager
def _api(env: dict[str, str], out: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{env['ARKSERVE_API_PORT']}"
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "arkserve", "api"], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def test_key_list_and_where_the_access_log_goes(tmp_path: Path) -> None:
    env = _env(tmp_path)
    init = subprocess.run([sys.executable, "-m", "arkserve", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    access_file = tmp_path / "data" / "logs" / "api-access.log"
    with _api(env, tmp_path / "api.out") as url:
        listed = subprocess.run([sys.executable, "-m", "arkserve", "key", "list"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        header = listed.stdout.splitlines()[0].lower()
        assert "access_key" in header and "secret" not in header and "****" not in listed.stdout
        for _ in range(3):
            httpx.get(f"{url}/api/v1/healthz/?poll")
        deadline = time.monotonic() + 10
        while "GET /api/v1/healthz/?poll" not in (access_file.read_text() if access_file.exists() else ""):
            assert time.monotonic() < deadline, "no access-log line in the file"
            time.sleep(0.05)
    terminal = (tmp_path / "api.out").read_text()
    assert "GET /api/v1/" not in terminal  # the terminal is not flooded …
    assert "Uvicorn running" in terminal or "Application startup" in terminal  # … but still says it started
    with _api({**env, "ARKSERVE_API_ACCESS_LOG": "terminal"}, tmp_path / "api2.out") as url:
        httpx.get(f"{url}/api/v1/healthz/?shown")
        deadline = time.monotonic() + 10
        while "GET /api/v1/healthz/?shown" not in (tmp_path / "api2.out").read_text():
            assert time.monotonic() < deadline, "asked for, but no access-log line on the terminal"
            time.sleep(0.05)


def test_port_help_says_what_the_port_means_on_each_runtime() -> None:
    text = " ".join(CliRunner().invoke(cli, ["service", "create", "--help"]).output.split())
    assert "Docker runtime: the port the app listens on inside its container" in text
    assert "Local runtime: not used; each replica gets a free port in $PORT" in text
    static = Path(__file__).parents[2] / "arkserve" / "console" / "static"
    assert "Local runtime: not used" in (static / "lang-en.js").read_text()
    assert "本地运行时：不使用此值" in (static / "lang-zh.js").read_text()  # noqa: RUF001
