"""``--wait`` on create, update and scale returns only when every replica runs the current revision and is
ready; a stalled rollout exits 1 with the status message, a timeout exits 4; a stale "ready" is never shown."""

from __future__ import annotations

import sys

from tests.e2e.conftest import Platform


def _settled(svc: dict[str, object], want: int) -> bool:
    instances = svc["instances"]
    assert isinstance(instances, list)
    return len(instances) == want and all(i["revision"] == svc["revision"] and i["state"] == "ready"
                                          for i in instances)


def test_wait_means_every_replica_on_the_current_revision(platform: Platform) -> None:
    made = platform.cli("service", "create", "pub", "--image", str(platform.app_dir), "--port", "8000",
                        "--command", f"{sys.executable} app.py", "--health-path", "/healthz", "--replicas", "2",
                        "--wait", "--timeout", "90", "-o", "json")
    assert made.returncode == 0, made.stderr
    with platform.client() as c:
        assert _settled(c.get("/services/pub"), 2)

    rolled = platform.cli("service", "update", "pub", "--env", "ROLL=2", "--wait", "--timeout", "90")
    assert rolled.returncode == 0, rolled.stderr
    with platform.client() as c:  # at once: not one replica left on the old revision
        svc = c.get("/services/pub")
    assert _settled(svc, 2) and svc["spec"]["env"] == {"ROLL": "2"}, svc

    scaled = platform.cli("service", "scale", "pub", "3", "--wait", "--timeout", "90")
    assert scaled.returncode == 0, scaled.stderr
    with platform.client() as c:
        assert _settled(c.get("/services/pub"), 3)

    broken = platform.cli("service", "update", "pub", "--command", "exit 3", "--wait", "--timeout", "90")
    assert broken.returncode == 1, (broken.returncode, broken.stdout, broken.stderr)
    assert "degraded (RolloutStalled)" in broken.stderr and "exited with code 3" in broken.stderr, broken.stderr


def test_wait_times_out_with_its_own_code_and_status_is_never_stale(platform: Platform) -> None:
    platform.create("slow", replicas=1)
    with platform.client() as c:
        after = c.patch("/services/slow", {"env": {"ROLL": "3"}})
    # right after the change the reconciler has not run: the old replica is still "ready", the service is not
    assert after["status"] == "updating" and after["reason"] == "RollingUpdate", after
    gave_up = platform.cli("service", "update", "slow", "--env", "ROLL=4", "--wait", "--timeout", "0")
    assert gave_up.returncode == 4 and "timed out" in gave_up.stderr, (gave_up.returncode, gave_up.stderr)
