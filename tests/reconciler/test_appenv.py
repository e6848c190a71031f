"""On the local runtime an app directory's own virtual environment (<app>/.venv/bin) comes first on PATH."""

from __future__ import annotations

import json
import sys
import urllib.request

from arkserve.reconciler.appenv import replica_env
from tests.reconciler.conftest import Cluster


def test_the_apps_venv_python_runs_the_command(cluster: Cluster) -> None:
    venv_bin = cluster.app_dir / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    python3 = venv_bin / "python3"  # stands in for a venv's interpreter: it marks what it runs
    python3.write_text(f'#!/bin/sh\nexport VERSION="venv:$VIRTUAL_ENV"\nexec "{sys.executable}" "$@"\n')
    python3.chmod(0o755)
    cluster.create("svc", 1, command="python3 app.py")
    cluster.wait("ready", lambda: len(cluster.ready("svc")) == 1)
    rep = cluster.ready("svc")[0]
    with urllib.request.urlopen(f"http://{rep.host}:{rep.port}/", timeout=5) as resp:
        answer = json.loads(resp.read())
    assert answer["version"] == f"venv:{(cluster.app_dir / '.venv').resolve()}"


def test_a_path_of_the_service_wins_and_other_runtimes_are_left_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    assert replica_env("local", str(tmp_path), {"PATH": "/opt/x"}) == {"PATH": "/opt/x"}
    assert replica_env("docker", str(tmp_path), {"A": "1"}) == {"A": "1"}
    env = replica_env("local", f"dir:{tmp_path}", {})
    assert env["PATH"].startswith(f"{tmp_path.resolve()}/.venv/bin:") and env["VIRTUAL_ENV"].endswith(".venv")
    assert replica_env("local", str(tmp_path / "nothing-here"), {}) == {}
