"""The runtime contract, run against every real backend (local processes, Docker Engine, a live Kubernetes
cluster when ``ARKSERVE_TEST_KUBECONFIG`` names one)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from arkserve.errors import PermanentError
from arkserve.logs import log_dir_for, read_logs
from arkserve.runtimes.base import Mount, ReplicaPhase, Runtime, object_name, parse_object_name

from .conftest import ROOT, Backend, http_get, wait_http, wait_until


def _texts(data_dir: Path, service: str, replica: str | None = None) -> list[str]:
    return [line.text for line in read_logs(log_dir_for(data_dir), service, replica)]


def test_start_serves_http_on_loopback_with_env(backend: Backend, runtime: Runtime, service: str) -> None:
    spec = backend.spec(service, env={"GREETING": "hello world"})
    t0 = time.perf_counter()
    info = runtime.start(spec)
    env = wait_http(info)
    print(f"\n{backend.kind}: start() to HTTP answer in {time.perf_counter() - t0:.3f}s")
    assert info.phase is ReplicaPhase.RUNNING
    assert (info.service, info.replica, info.revision) == (service, "r0000a1", "rev1")
    assert (info.host == backend.host if backend.host else info.host) and info.port > 0 and info.runtime_id
    assert env["PORT"] == str(info.port if backend.env_port_is_host_port else spec.port)
    assert env["ARK_SERVICE"] == service and env["ARK_REPLICA"] == "r0000a1"
    assert env["GREETING"] == "hello world"


def test_list_and_inspect_parse_names_back(backend: Backend, runtime: Runtime, service: str) -> None:
    info = runtime.start(backend.spec(service))
    mine = [i for i in runtime.list() if i.service == service]
    assert [(i.replica, i.runtime_id, i.phase) for i in mine] == [("r0000a1", info.runtime_id,
                                                                   ReplicaPhase.RUNNING)]
    assert parse_object_name(object_name(service, "r0000a1")) == (service, "r0000a1")
    again = runtime.inspect(service, "r0000a1")
    assert again is not None and again.runtime_id == info.runtime_id and again.port == info.port
    assert runtime.inspect(service, "r0000bb") is None


def test_start_is_idempotent_for_a_running_replica(backend: Backend, runtime: Runtime, service: str) -> None:
    first = runtime.start(backend.spec(service))
    second = runtime.start(backend.spec(service))
    assert second.runtime_id == first.runtime_id


def test_logs_and_graceful_stop(backend: Backend, runtime: Runtime, service: str, data_dir: Path) -> None:
    info = runtime.start(backend.spec(service))
    wait_http(info)
    wait_until(lambda: "listening" in _texts(data_dir, service), what="app output in the log file")
    lines = read_logs(log_dir_for(data_dir), service)
    assert {line.replica for line in lines} == {"r0000a1"}
    t0 = time.monotonic()
    runtime.stop(service, "r0000a1", grace_s=10)
    assert time.monotonic() - t0 < 8, "a SIGTERM-honouring app must not wait for the grace period"
    assert "got SIGTERM" in _texts(data_dir, service, "r0000a1")
    assert runtime.inspect(service, "r0000a1") is None
    assert all(i.service != service for i in runtime.list())
    with pytest.raises(OSError):
        http_get(info, timeout=1)
    assert "listening" in _texts(data_dir, service), "logs outlive the replica"


def test_sigterm_ignoring_app_is_killed_after_grace(backend: Backend, runtime: Runtime, service: str,
                                                   data_dir: Path) -> None:
    info = runtime.start(backend.spec(service, command=backend.ignore_term))
    wait_http(info)
    t0 = time.monotonic()
    runtime.stop(service, "r0000a1", grace_s=1)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 8, elapsed
    assert runtime.inspect(service, "r0000a1") is None
    with pytest.raises(OSError):
        http_get(info, timeout=1)


def test_stop_is_idempotent(backend: Backend, runtime: Runtime, service: str) -> None:
    runtime.stop(service, "r0000ff", grace_s=0)  # never existed
    runtime.start(backend.spec(service))
    runtime.stop(service, "r0000a1", grace_s=2)
    runtime.stop(service, "r0000a1", grace_s=2)
    assert runtime.inspect(service, "r0000a1") is None


def test_crashing_command_shows_exited_with_code(backend: Backend, runtime: Runtime, service: str,
                                                 data_dir: Path) -> None:
    runtime.start(backend.spec(service, command="echo boom; exit 3"))

    def exited() -> bool:
        info = runtime.inspect(service, "r0000a1")
        return info is not None and info.phase is ReplicaPhase.EXITED

    wait_until(exited, what="the replica to exit")
    info = runtime.inspect(service, "r0000a1")
    assert info is not None and info.exit_code == 3
    assert [i.exit_code for i in runtime.list() if i.service == service] == [3]
    wait_until(lambda: "boom" in _texts(data_dir, service), what="the crash output")
    runtime.stop(service, "r0000a1", grace_s=1)
    assert runtime.inspect(service, "r0000a1") is None


def test_missing_image_is_permanent(backend: Backend, runtime: Runtime, service: str) -> None:
    image = "/nonexistent/app-dir" if backend.kind == "local" else "arkserve-test/nope:1"
    spec = backend.spec(service)
    with pytest.raises(PermanentError, match="not"):
        runtime.start(type(spec)(**{**spec.__dict__, "image": image}))
    assert runtime.inspect(service, "r0000a1") is None


def test_new_runtime_in_a_new_process_adopts_and_stops(backend: Backend, runtime: Runtime, service: str,
                                                       data_dir: Path) -> None:
    """A reconciler restart: another process starts the replica and exits; this one adopts it."""
    spec = backend.spec(service)
    code = (f"from pathlib import Path; from arkserve.runtimes.base import ReplicaSpec\n"
            f"data_dir = Path({str(data_dir)!r})\n{backend.make_code}\n"
            f"info = rt.start(ReplicaSpec(**{spec.__dict__!r}))\nprint(info.runtime_id, info.port)\nrt.close()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    runtime_id, port = out.stdout.split()
    adopted = runtime.inspect(service, "r0000a1")
    assert adopted is not None and adopted.phase is ReplicaPhase.RUNNING
    assert (adopted.runtime_id, adopted.port) == (runtime_id, int(port))
    assert [i.runtime_id for i in runtime.list() if i.service == service] == [runtime_id]
    wait_http(adopted)
    again = runtime.start(spec)  # a restarted reconciler re-issuing start must not duplicate it
    assert again.runtime_id == runtime_id
    runtime.stop(service, "r0000a1", grace_s=5)
    assert runtime.inspect(service, "r0000a1") is None
    texts = _texts(data_dir, service, "r0000a1")
    assert texts.count("listening") == 1, texts  # adoption does not duplicate lines
    assert "got SIGTERM" in texts


def test_mount_is_visible_and_read_only_where_supported(backend: Backend, runtime: Runtime, service: str,
                                                        data_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("w=42\n")
    command = ('echo "dir=$ARK_MODEL_DIR"; cat /model/weights.txt; if (echo x > /model/probe) 2>/dev/null; '
               "then echo WRITABLE; else echo READONLY; fi; sleep 300")
    runtime.start(backend.spec(service, command=command, mounts=(Mount(str(model), "/model"),)))
    wait_until(lambda: {"WRITABLE", "READONLY"} & set(_texts(data_dir, service)), what="the mount probe")
    texts = _texts(data_dir, service)
    assert "w=42" in texts and "dir=/model" in texts  # at the target path, on every backend
    if backend.readonly_mounts:
        assert "READONLY" in texts and not (model / "probe").exists()
    runtime.stop(service, "r0000a1", grace_s=0)


def test_a_replica_sees_neither_the_data_dir_nor_other_apps_and_is_not_root(
        backend: Backend, runtime: Runtime, service: str, data_dir: Path, tmp_path: Path) -> None:
    """Issue 11's reproduction: a user's command reads the master key, the store and another user's app."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "master.key").write_text("TOPSECRET-KEY\n")
    other = tmp_path / "other-app"
    other.mkdir()
    (other / "secret").write_text("OTHER-USERS-SECRET\n")
    command = (f"echo uid=$(id -u); cat {data_dir}/master.key || echo NO-KEY; "
               f"ls {data_dir} >/dev/null 2>&1 && echo SEES-DATA || echo NO-DATA; "
               f"cat {other}/secret || echo NO-OTHER; echo done; sleep 300")
    runtime.start(backend.spec(service, command=command))
    wait_until(lambda: "done" in _texts(data_dir, service), what="the probe to finish")
    texts = _texts(data_dir, service)
    runtime.stop(service, "r0000a1", grace_s=0)
    uid = next(t for t in texts if t.startswith("uid="))
    assert uid != "uid=0", texts
    assert {"NO-KEY", "NO-DATA", "NO-OTHER"} <= set(texts), texts
    assert not any("TOPSECRET" in t or "OTHER-USERS-SECRET" in t for t in texts), texts
