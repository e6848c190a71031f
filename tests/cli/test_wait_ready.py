"""`service scale|update --wait` while a canary runs: the canary's replicas are not the stable count's, so the wait
ends when the stable revision has settled (before, it never did and timed out with exit 4; hostile review)."""

from __future__ import annotations

from typing import Any

from arkserve.cli.services import wait_ready


class Answers:
    """Enough of the CLI's client: the service as the API shows it."""

    def __init__(self, svc: dict[str, Any]) -> None:
        self.svc = svc

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        assert path.endswith("/services/web")
        return self.svc


def _replica(rid: str, revision: str) -> dict[str, Any]:
    return {"id": rid, "state": "ready", "revision": revision}


def test_a_settled_service_with_a_canary_is_done_waiting() -> None:
    svc = {"name": "web", "revision": "stable1", "replicas": 2, "status": "ready", "reason": "", "message": "",
           "canary": {"revision": "canary1", "weight": 10, "replicas": 1, "ready": 1},
           "instances": [_replica("r1", "stable1"), _replica("r2", "stable1"), _replica("r3", "canary1")]}
    assert wait_ready(Answers(svc), "web", timeout=2.0) is svc  # type: ignore[arg-type]
