"""`arkserve image gc` against the real registry part of `up` (real supervisor, real Distribution, real dockerd):
it finds the registry where the running part listens, not where the shell's settings say; stopped by SIGTERM it
leaves the registry writable; killed outright, the registry does not stay read-only once the pass is gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arkserve.registry import config
from arkserve.registry.maintenance import _registry_pid
from tests.registry.conftest import REGISTRY_BINARY, Stack, _registry_up, wait_for

pytestmark = pytest.mark.docker


def _shell_env(stack: Stack, **extra: str) -> dict[str, str]:
    """An admin's shell on the registry's host: the data dir, none of the settings `up` runs with."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("ARKSERVE_") or k == "ARKSERVE_CLI_CONFIG"}
    return {**env, "ARKSERVE_DATA_DIR": str(stack.settings.data_dir), **extra}


def _gc(stack: Stack, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "arkserve", "image", "gc"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _slow_collector(tmp: Path) -> tuple[Path, Path]:
    """A registry binary for the gc pass only: it says it started (its pid in a file), sleeps, then collects."""
    started = tmp / "collector.pid"
    started.unlink(missing_ok=True)
    script = tmp / "slow-registry"
    script.write_text(f"#!{sys.executable}\nimport os, sys, time\n"
                      f"open({str(started)!r}, 'w').write(str(os.getpid()))\n"
                      f"time.sleep(120)\nos.execv({REGISTRY_BINARY!r}, [{REGISTRY_BINARY!r}, *sys.argv[1:]])\n")
    script.chmod(0o755)
    return script, started


def _kill_collector(pid: int) -> None:
    with contextlib.suppress(OSError):
        if b"slow-registry" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def _restarted(stack: Stack) -> int:
    """SIGTERM the registry part and wait for the supervisor's next one to answer; its pid."""
    old = _registry_pid(stack.settings.data_dir)
    assert old is not None
    os.kill(old, signal.SIGTERM)

    def back() -> int | None:
        pid = _registry_pid(stack.settings.data_dir)
        return pid if pid not in (None, old) and _registry_up(f"http://{stack.address}") else None

    pid: int = wait_for("the registry's restart", back, timeout=60)
    return pid


def test_gc_of_a_registry_nothing_was_pushed_to_collects_nothing(tmp_path: Path) -> None:
    gc = subprocess.run([sys.executable, "-m", "arkserve", "image", "gc", "--data-dir", str(tmp_path), "-o", "json"],
                        capture_output=True, text=True, timeout=60)
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["freed_bytes"] == json.loads(gc.stdout)["uploads_removed"] == 0


def test_gc_finds_the_registry_up_runs_not_the_one_the_shell_settings_name(stack: Stack) -> None:
    stack.add_user("gina")
    assert stack.login("gina").returncode == 0
    assert stack.push("gina", "gina/before-gc:v1").returncode == 0
    env = _shell_env(stack)
    assert "ARKSERVE_REGISTRY_PORT" not in env and stack.settings.registry.port != 7782  # the default
    gc = _gc(stack, env)
    try:
        out, err = gc.communicate(timeout=120)
    finally:
        if gc.poll() is None:
            gc.kill()
    assert gc.returncode == 0, err
    assert out.startswith("freed "), out
    assert not config.running_readonly(stack.settings.data_dir)
    assert not config.readonly_marker(stack.settings.data_dir).exists()
    push = stack.push("gina", "gina/after-gc:v1")
    assert push.returncode == 0, push.stderr


def test_gc_stopped_by_sigterm_restarts_the_registry_writable(stack: Stack) -> None:
    stack.add_user("hugo")
    assert stack.login("hugo").returncode == 0
    assert stack.push("hugo", "hugo/before-gc:v1").returncode == 0  # something to collect
    script, started = _slow_collector(stack.tmp)
    gc = _gc(stack, _shell_env(stack, ARKSERVE_REGISTRY_BINARY=str(script)))
    try:
        wait_for("the collection to start", started.exists, timeout=90)
        assert config.running_readonly(stack.settings.data_dir)  # collecting: read-only
        refused = stack.push("hugo", "hugo/during-gc:v1")
        assert refused.returncode != 0, refused.stdout
        gc.send_signal(signal.SIGTERM)  # what systemd or `timeout` sends
        _, err = gc.communicate(timeout=90)
    finally:
        if gc.poll() is None:
            gc.kill()
        if started.exists() and started.read_text():  # gone already when the pass cleaned up after itself
            _kill_collector(int(started.read_text()))
    assert gc.returncode == 1
    assert err.strip().splitlines() == ["Error: garbage collection interrupted; the registry is writable again"], err
    assert not config.running_readonly(stack.settings.data_dir)
    push = stack.push("hugo", "hugo/after-gc:v1")
    assert push.returncode == 0, push.stderr


def test_a_gc_killed_outright_does_not_leave_the_registry_read_only(stack: Stack) -> None:
    stack.add_user("iris")
    assert stack.login("iris").returncode == 0
    assert stack.push("iris", "iris/before-gc:v1").returncode == 0
    data_dir = stack.settings.data_dir
    script, started = _slow_collector(stack.tmp)
    gc = _gc(stack, _shell_env(stack, ARKSERVE_REGISTRY_BINARY=str(script)))
    wait_for("the collection to start", lambda: started.exists() and started.read_text(), timeout=90)
    collector = int(started.read_text())
    try:
        gc.kill()  # SIGKILL: no clean-up at all
        gc.communicate(timeout=30)
        assert config.readonly_marker(data_dir).exists()
        # its garbage-collect process still runs: a restart in the meantime stays read-only beside it
        _restarted(stack)
        assert config.running_readonly(data_dir)
    finally:
        _kill_collector(collector)
    wait_for("the collector's end", lambda: not config.gc_running(data_dir), timeout=30)
    # the next start of the registry finds the marker nobody holds: writable again
    _restarted(stack)
    assert not config.running_readonly(data_dir)
    assert not config.readonly_marker(data_dir).exists()
    push = stack.push("iris", "iris/after-kill:v1")
    assert push.returncode == 0, push.stderr


def test_restarts_asked_for_do_not_add_up_to_a_long_wait(stack: Stack) -> None:
    # each gc pass restarts the registry twice (read-only, then writable); with a crash's backoff, the fifth
    # restart in a row waited 8 s and the registry stayed down that long
    took = []
    for _ in range(5):
        t0 = time.monotonic()
        _restarted(stack)
        took.append(time.monotonic() - t0)
    assert max(took) < 4.0, took
