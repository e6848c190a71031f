"""The reconciler on the real local runtime: scaling, crash and hang recovery, adoption, rollouts, deletion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from arkserve.runtimes.base import ReplicaSpec
from tests.reconciler.conftest import Cluster


def _identity(host: str, port: int, path: str = "/") -> dict[str, str]:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def test_scale_1_3_0_2_converges_and_status_explains(cluster: Cluster) -> None:
    cluster.create("svc", 1)
    for n in (1, 3, 0, 2):
        cluster.scale("svc", n)
        cluster.wait(f"{n} ready", lambda n=n: len(cluster.ready("svc")) == n and len(cluster.replicas("svc")) == n)
        svc = cluster.service("svc")
        assert svc is not None
        cluster.wait("status", lambda n=n: (cluster.service("svc") or svc).status == ("stopped" if n == 0 else "ready"))
    for rep in cluster.ready("svc"):
        ident = _identity(rep.host, rep.port or 0)
        assert ident == {"replica": rep.id, "service": "svc", "version": "1", "path": "/"}
    svc = cluster.service("svc")
    assert svc is not None and svc.message == "2/2 replicas ready"
    assert {"started", "ready", "draining", "stopped"} <= set(cluster.events("svc"))
    assert len({r.port for r in cluster.ready("svc")}) == 2  # each replica got its own PORT


def test_kill_9_is_replaced_within_seconds_without_touching_others(cluster: Cluster) -> None:
    cluster.create("svc", 3)
    cluster.wait("3 ready", lambda: len(cluster.ready("svc")) == 3)
    victim, *others = cluster.ready("svc")
    before = {r.id: r.runtime_id for r in others}
    os.killpg(int(victim.runtime_id), signal.SIGKILL)
    t0 = time.monotonic()
    cluster.wait("victim noticed",
                 lambda: any(r.id == victim.id and r.state != "ready" for r in cluster.replicas("svc")))
    cluster.wait("back to 3 ready", lambda: len(cluster.ready("svc")) == 3)
    elapsed = time.monotonic() - t0
    assert elapsed < 5.0, f"replaced in {elapsed:.1f}s"
    after = {r.id: r for r in cluster.replicas("svc")}
    assert after[victim.id].restarts == 1
    assert any("exited with code" in m for m in cluster.event_messages("svc", "crashed"))
    for rid, runtime_id in before.items():
        assert after[rid].runtime_id == runtime_id and after[rid].restarts == 0
    assert "crashed" in cluster.events("svc") and "restarted" in cluster.events("svc")


def test_a_hung_replica_is_replaced(cluster: Cluster) -> None:
    hang = cluster.app_dir / "hang-now"  # the app dir: what the sandboxed replica sees of the host
    cluster.create("svc", 1, env={"HANG_FILE": str(hang)})
    cluster.wait("ready", lambda: len(cluster.ready("svc")) == 1)
    first = cluster.ready("svc")[0]
    hang.touch()
    cluster.wait("unhealthy noticed", lambda: cluster.replicas("svc")[0].state != "ready", timeout=15)
    hang.unlink()
    cluster.wait("ready again", lambda: len(cluster.ready("svc")) == 1, timeout=15)
    again = cluster.ready("svc")[0]
    assert again.id == first.id and again.runtime_id != first.runtime_id and again.restarts == 1
    assert "unhealthy" in cluster.events("svc")


def test_restarting_the_reconciler_adopts_without_restarts(cluster: Cluster) -> None:
    cluster.create("svc", 3)
    cluster.wait("3 ready", lambda: len(cluster.ready("svc")) == 3)
    before = {r.id: r.runtime_id for r in cluster.ready("svc")}
    cluster.stop()
    # a replica left behind by a crashed reconciler for a service that no longer exists is an orphan
    cluster.runtime.start(ReplicaSpec(service="ghost", replica="r0000aa", revision="x", image=str(cluster.app_dir),
                                      command=f"{sys.executable} app.py", port=8000))
    cluster.start()
    cluster.wait("orphan removed", lambda: all(i.service != "ghost" for i in cluster.runtime.list()))
    time.sleep(1.5)  # several passes
    after = {r.id: r.runtime_id for r in cluster.ready("svc")}
    assert after == before
    assert all(r.restarts == 0 for r in cluster.replicas("svc"))
    assert len(cluster.runtime.list()) == 3


def test_rolling_update_replaces_one_at_a_time(cluster: Cluster) -> None:
    cluster.create("svc", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    old = {r.id for r in cluster.ready("svc")}
    cluster.update("svc", env={"VERSION": "2"})
    min_ready = 2
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        reps = cluster.replicas("svc")
        min_ready = min(min_ready, len([r for r in reps if r.state == "ready"]))
        if len(reps) == 2 and all(r.state == "ready" and r.id not in old for r in reps):
            break
        time.sleep(0.05)
    reps = cluster.ready("svc")
    assert len(reps) == 2 and not old & {r.id for r in reps}
    assert all(_identity(r.host, r.port or 0)["version"] == "2" for r in reps)
    assert min_ready >= 2, "a rolling update must keep the desired number of replicas ready"
    svc = cluster.service("svc")
    cluster.wait("status ready", lambda: (cluster.service("svc") or svc).status == "ready")  # type: ignore[union-attr]


def test_a_broken_new_version_stalls_and_old_replicas_keep_serving(cluster: Cluster) -> None:
    cluster.create("svc", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    old = {r.id for r in cluster.ready("svc")}
    cluster.update("svc", env={"CRASH_AT_START": "3"})
    seen = []  # the first row that said degraded

    def degraded() -> bool:
        row = cluster.service("svc")
        if row is not None and row.status == "degraded":
            seen.append(row)
        return bool(seen)

    cluster.wait("degraded", degraded, timeout=20)
    svc = seen[0]
    assert svc.reason == "RolloutStalled" and "exited with code 3" in svc.message
    assert "bad config" in svc.message  # the last log lines are quoted
    assert {r.id for r in cluster.ready("svc")} == old
    statuses = set()  # while the broken replica is started again and again, the status holds still

    def retried_twice() -> bool:
        row = cluster.service("svc")
        statuses.add((row.status, row.reason) if row is not None else None)
        return len(cluster.event_messages("svc", "restarted")) >= 2

    cluster.wait("two retries", retried_twice, timeout=20)
    assert statuses == {("degraded", "RolloutStalled")}


def test_crash_loop_shows_failed_with_exit_code(cluster: Cluster) -> None:
    cluster.create("svc", 1, env={"CRASH_AT_START": "7"})
    cluster.wait("failed", lambda: (cluster.service("svc").status == "failed"), timeout=20)  # type: ignore[union-attr]
    svc = cluster.service("svc")
    assert svc is not None and svc.reason == "CrashLoop" and "exited with code 7" in svc.message


def test_a_missing_image_directory_says_so_in_the_reason(cluster: Cluster) -> None:
    cluster.create("svc", 1, image=str(cluster.app_dir / "no-such-dir"))
    cluster.wait("failed", lambda: (cluster.service("svc").status == "failed"), timeout=20)  # type: ignore[union-attr]
    svc = cluster.service("svc")
    assert svc is not None and svc.reason == "ImageNotFound" and "does not exist" in svc.message
    assert "Still retrying" in svc.message and "until the service is fixed, scaled to 0 or deleted" in svc.message


def test_app_ignoring_port_is_diagnosed_at_once_and_fails_readiness_with_that_reason(cluster: Cluster) -> None:
    import socket

    with socket.socket() as s:  # a free port other than the $PORT the runtime hands out
        s.bind(("127.0.0.1", 0))
        other = s.getsockname()[1]
    t0 = time.monotonic()
    cluster.create("svc", 1, env={"IGNORE_PORT": str(other)}, startup_timeout_s=15)
    cluster.wait("wrong-port event", lambda: bool(cluster.event_messages("svc", "wrong_port")), timeout=20)
    assert time.monotonic() - t0 < 15  # at once (after port_check_after_s, 3 s), not at the startup timeout
    (message,) = cluster.event_messages("svc", "wrong_port")  # said once, not on every pass
    port = cluster.runtime.list()[0].port
    assert port != other
    assert f"the app listens on {other}, but the platform routes to $PORT={port}; read the port from" in message
    cluster.wait("status reason WrongPort", lambda: getattr(cluster.service("svc"), "reason", "") == "WrongPort",
                 timeout=5)  # the status follows at the end of the same pass
    svc = cluster.service("svc")
    assert svc is not None and svc.status == "progressing" and f"the app listens on {other}" in svc.message
    cluster.wait("not-ready failure", lambda: bool(cluster.event_messages("svc", "crashed")), timeout=30)
    crash = cluster.event_messages("svc", "crashed")[0]
    assert "not ready after 15 s: the app listens on" in crash and f"$PORT={port}" in crash


def test_delete_drains_then_removes_everything(cluster: Cluster) -> None:
    import dataclasses

    from arkserve.store.db import version
    from arkserve.store.routing import ack

    cluster.stop()  # a drain timeout far from the few seconds this takes: the ack below ends the drain
    cluster.config = dataclasses.replace(cluster.config, drain_timeout_s=10.0)
    cluster.start()
    cluster.create("svc", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    replicas = cluster.ready("svc")
    logs = cluster.data_dir / "logs" / "svc"
    cluster.wait("replica logs", lambda: len(list(logs.glob("*.log"))) == 2)
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))  # a live gateway worker, still routing to both
    cluster.delete("svc")
    cluster.wait("both draining", lambda: [r.state for r in cluster.replicas("svc")] == ["draining"] * 2)
    cluster.wait("status deleting", lambda: getattr(cluster.service("svc"), "status", "") == "deleting")
    time.sleep(1.0)  # well past drain_min_s (several passes): nothing may stop them while the worker lags
    assert [r.state for r in cluster.replicas("svc")] == ["draining"] * 2
    for rep in replicas:  # out of routing, but still running (what was in flight finishes)
        assert _identity(rep.host, rep.port or 0)["replica"] == rep.id
    assert len(cluster.runtime.list()) == 2
    acked = time.time()
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))  # the worker applied the snapshot without them
    cluster.wait("gone", lambda: cluster.service("svc") is None, timeout=20)
    assert cluster.runtime.list() == []
    assert not logs.exists()  # its logs went with it: a new service of this name starts with none
    from arkserve.store import events

    with cluster.store.read() as conn:
        log = events.list_events(conn, "svc", limit=1000)
    for rep in replicas:
        kinds = [e["kind"] for e in log if e["replica"] == rep.id]
        assert kinds.index("draining") < kinds.index("stopped"), kinds
        assert next(e["time"] for e in log if e["replica"] == rep.id and e["kind"] == "stopped") > acked
    assert log[-1]["kind"] == "deleted"


def test_a_replica_the_host_cannot_place_stays_pending_with_the_reason(cluster: Cluster) -> None:
    from arkserve.store import instance_types

    with cluster.store.begin() as conn:
        instance_types.create(conn, {"name": "gpu.8x", "cpus": 8, "memory_mb": 1024, "gpus": 8, "gpu_model": "X",
                                     "price_per_hour": 9.0, "billing": "payg", "description": ""})
    cluster.create("big", 1, instance_type="gpu.8x")
    cluster.wait("unschedulable", lambda: (cluster.service("big").reason == "Unschedulable"))  # type: ignore[union-attr]
    svc = cluster.service("big")
    assert svc is not None and svc.reason == "Unschedulable" and "needs 8 X GPUs; this host has" in svc.message
    assert [r.state for r in cluster.replicas("big")] == ["pending"]
    assert cluster.runtime.list() == []


def test_logs_survive_restarts_and_the_previous_run_is_readable(cluster: Cluster) -> None:
    from arkserve.logs import read_logs

    cluster.create("svc", 1)
    cluster.wait("ready", lambda: len(cluster.ready("svc")) == 1)
    first = cluster.ready("svc")[0]
    _identity(first.host, first.port or 0)
    os.killpg(int(first.runtime_id), signal.SIGKILL)
    cluster.wait("restarted", lambda: any(r.restarts == 1 and r.state == "ready" for r in cluster.replicas("svc")))
    log_dir = cluster.data_dir / "logs"
    previous = [line.text for line in read_logs(log_dir, "svc", first.id, previous=True)]
    current = [line.text for line in read_logs(log_dir, "svc", first.id)]
    assert any(t.startswith("listening on") for t in previous) and "GET /" in previous
    assert any(t.startswith("listening on") for t in current) and "GET /" not in current
    cluster.delete("svc")
    cluster.wait("gone", lambda: cluster.service("svc") is None, timeout=20)
    assert not read_logs(log_dir, "svc", first.id) and not (log_dir / "svc").exists()  # deleted with the service


def test_a_model_from_the_network_disk_reaches_the_replica(cluster: Cluster) -> None:
    disk = cluster.data_dir / "disks" / "owner" / "models" / "v1"
    disk.mkdir(parents=True)
    content = f"weights {os.urandom(8).hex()}"
    (disk / "weights.bin").write_text(content)
    cluster.create("withmodel", 1, model={"source": "disk", "ref": "models/v1", "mount_path": "/models"},
                   env={"MODEL_FILE": "weights.bin"})
    cluster.wait("ready", lambda: len(cluster.ready("withmodel")) == 1)
    rep = cluster.ready("withmodel")[0]
    seen = _identity(rep.host, rep.port or 0, "/model")
    # where it is mounted is the runtime's business (the source dir unconfined, the target in a sandbox)
    assert seen.get("model_dir") and seen.get("content") == content, seen
    cluster.create("nomodel", 1, model={"source": "disk", "ref": "models/missing", "mount_path": "/models"})
    cluster.wait("failed", lambda: bool(cluster.event_messages("nomodel", "crashed")))
    assert "not found on owner's disk" in cluster.event_messages("nomodel", "crashed")[0]
    cluster.create("escape", 1, model={"source": "disk", "ref": "../../etc", "mount_path": "/models"})
    cluster.wait("failed", lambda: bool(cluster.event_messages("escape", "crashed")))
    assert "(BadPath)" in cluster.event_messages("escape", "crashed")[0]  # '..' never leaves the owner's disk
    assert "'..'" in cluster.event_messages("escape", "crashed")[0]


def test_a_draining_replica_stops_only_when_every_gateway_worker_has_dropped_it(cluster: Cluster) -> None:
    import dataclasses

    from arkserve.store.db import version
    from arkserve.store.routing import ack

    # a drain timeout far from the few seconds the stop may take on a loaded box: a stop caused by the
    # timeout (about 9 s after the ack below) cannot pass for one caused by the ack
    cluster.stop()
    cluster.config = dataclasses.replace(cluster.config, drain_timeout_s=10.0)
    cluster.start()
    cluster.create("svc", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))  # a live worker still on the snapshot with both replicas
    cluster.scale("svc", 1)
    cluster.wait("draining", lambda: any(r.state == "draining" for r in cluster.replicas("svc")))
    time.sleep(1.0)  # well past drain_min_s: the lagging worker holds the replica
    assert len(cluster.runtime.list()) == 2
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))
    cluster.wait("stopped", lambda: len(cluster.runtime.list()) == 1, timeout=5)  # the drain timeout is 10 s


def test_prune_drops_old_records_and_logs_of_gone_replicas_only(cluster: Cluster) -> None:
    import dataclasses

    from arkserve.store import events

    cluster.create("svc", 1)
    cluster.wait("ready", lambda: len(cluster.ready("svc")) == 1)
    live = cluster.ready("svc")[0].id
    # the pump writes a replica's log file once it has output (ready may come first)
    cluster.wait("the live replica's log", lambda: (cluster.data_dir / "logs" / "svc" / f"{live}.log").exists())
    gone = cluster.data_dir / "logs" / "svc" / "r00000dead.log"
    gone.write_text("old\n")
    os.utime(gone, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    with cluster.store.begin() as conn:
        events.insert_requests(conn, [{"time": time.time() - 10 * 86400, "service": "svc", "replica": "x",
                                       "method": "GET", "path": "/", "status": 200, "latency_ms": 1.0,
                                       "bytes_in": 0, "bytes_out": 0, "access_key": "", "client": "",
                                       "request_id": "old"}])
    from arkserve.storage.market import BlobStore
    from arkserve.store import models, users

    blobs, hour_ago = BlobStore(cluster.data_dir), time.time() - 3700
    listed, orphan, fresh = (blobs.path(c * 64) for c in "abc")  # a version lists the first only
    for blob in (listed, orphan, fresh):
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(b"w")
    for blob in (listed, orphan):
        os.utime(blob, (hour_ago, hour_ago))  # the third is within the grace: a publish may be about to list it
    with cluster.store.begin() as conn:
        owner = users.create(conn, "modeller", "h", "user").id
        m = models.create(conn, "m", owner, {}, False)
        models.add_version(conn, m.id, "1", "sha256:" + "d" * 64, [{"path": "w", "size": 1, "sha256": "a" * 64}])
    assert cluster.reconciler is not None
    cluster.reconciler.config = dataclasses.replace(cluster.reconciler.config, retention_s=86400)
    cluster.reconciler.prune()
    assert listed.exists() and not orphan.exists() and fresh.exists()
    assert not gone.exists()
    assert (cluster.data_dir / "logs" / "svc" / f"{live}.log").exists()
    with cluster.store.read() as conn:
        assert events.list_requests(conn, "svc") == []
        assert events.list_events(conn, "svc")  # recent events stay


def test_restarts_never_leave_an_untracked_process_behind(cluster: Cluster) -> None:
    """A crashed replica is stopped before its id starts again, so no old process escapes the runtime."""
    cluster.create("svc", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    for _ in range(3):
        victim = cluster.ready("svc")[0]
        os.killpg(int(victim.runtime_id), signal.SIGKILL)
        cluster.wait("noticed", lambda v=victim: all(r.runtime_id != v.runtime_id or r.state != "ready"
                                                     for r in cluster.replicas("svc")))
        cluster.wait("2 ready", lambda: len(cluster.ready("svc")) == 2)
    tracked = {int(i.runtime_id) for i in cluster.runtime.list()}
    mine = subprocess.run(["pgrep", "-f", "app.py$"], capture_output=True, text=True).stdout.split()
    ours = {int(p) for p in mine if str(cluster.app_dir) in os.readlink(f"/proc/{p}/cwd")}
    leaked = {p for p in ours if os.getpgid(p) not in tracked}
    assert leaked == set()


def test_a_service_is_ready_only_once_every_live_gateway_worker_routes_to_it(cluster: Cluster) -> None:
    """``ready`` means callable: `service create --wait` returns once the gateways serve the new replicas."""
    from arkserve.store.db import version
    from arkserve.store.routing import ack

    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))  # a live gateway worker that has not loaded what comes next
    cluster.create("svc", 1)
    cluster.wait("replica ready", lambda: len(cluster.ready("svc")) == 1)
    time.sleep(1.0)  # several passes: the status must wait for the worker
    svc = cluster.service("svc")
    assert svc is not None and svc.status != "ready", svc
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))
    cluster.wait("status ready", lambda: getattr(cluster.service("svc"), "status", "") == "ready", timeout=5)


def test_a_new_service_at_zero_replicas_is_stopped_only_once_every_live_gateway_worker_listens_for_it(
        cluster: Cluster) -> None:
    """A service created at 0 replicas (autoscaled from zero: its endpoint holds requests for the cold start) says
    ``stopped`` once the gateways have its port open, so a request sent right after `create --wait` connects."""
    from arkserve.store.db import version
    from arkserve.store.routing import ack

    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))  # a live gateway worker that has not loaded what comes next
    cluster.create("idle", 0)
    time.sleep(1.0)  # several passes: the status must wait for the worker
    svc = cluster.service("idle")
    assert svc is not None and svc.status == "pending", svc
    with cluster.store.begin() as conn:
        ack(conn, "slow-gateway:1", version(conn))
    cluster.wait("status stopped", lambda: getattr(cluster.service("idle"), "status", "") == "stopped", timeout=5)
