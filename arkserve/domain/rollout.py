"""Whether a service has settled on what was last asked of it, and a status that never claims more (pure).

The reconciler writes a service's status after each pass; between a change (scale, update) and its next
pass the stored status still describes the previous state ("ready" with every replica on the old revision).
:func:`settled` is the one definition of done — the desired number of replicas, every one on the current
revision and ready — used by the API's status, the CLI's ``--wait`` and the console's progress banner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Replica(NamedTuple):
    state: str
    revision: str


def settled(desired: int, current_revision: str, replicas: Sequence[Replica]) -> bool:
    return len(replicas) == desired and all(r.state == "ready" and r.revision == current_revision for r in replicas)


def honest_status(status: str, reason: str, message: str, desired: int, current_revision: str,
                  replicas: Sequence[Replica]) -> tuple[str, str, str]:
    """The stored (status, reason, message), except that "ready"/"stopped" is only said of a settled service."""
    if status not in ("ready", "stopped") or settled(desired, current_revision, replicas):
        return status, reason, message
    ready = sum(1 for r in replicas if r.state == "ready")
    if any(r.revision != current_revision for r in replicas if r.state != "draining"):
        done = sum(1 for r in replicas if r.state == "ready" and r.revision == current_revision)
        return ("updating", "RollingUpdate",
                f"{done} of {desired} replicas on revision {current_revision}; {ready}/{desired} replicas ready")
    return "progressing", "Scaling", f"{ready}/{desired} replicas ready"
