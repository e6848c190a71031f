"""The lease interface every backend implements, and what a backend answers (:class:`Holding`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Holding:
    """A lease as a backend last saw it."""

    holder: str  # who holds it ("" when nobody does)
    token: int  # fencing token: grows by one each time the lease changes hands
    duration_s: float  # how long it lasts without a renewal


class LeaseBackend(Protocol):
    name: str  # "store" or "kubernetes", for logs

    def acquire(self, holder: str, duration_s: float) -> Holding:
        """Renew the lease if ``holder`` holds it, take it if it is free or expired, and return what the lease
        now is: held by ``holder`` when ``result.holder == holder``. Only one caller can win a free lease.
        Raises ``arkserve.errors.TemporaryError`` when the backend cannot be reached (nothing is held then)."""
        ...

    def release(self, holder: str, token: int) -> None:
        """Give the lease up at once (clean shutdown), if ``holder`` still holds it with ``token``."""
        ...
