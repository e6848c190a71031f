"""A bounded load generator for the platform tests: N signed requests at C concurrency, results counted."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from arkserve.sdk.auth import ArkAuth


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    replicas: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    sent: int = 0

    @property
    def failed(self) -> int:
        return len(self.errors) + sum(n for s, n in self.statuses.items() if s != 200)


async def _run(url: str, auth: ArkAuth, ca: str, total: int, concurrency: int, stop: threading.Event,
               min_duration_s: float, result: LoadResult) -> None:
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    verify = ssl.create_default_context(cafile=ca)
    async with httpx.AsyncClient(verify=verify, auth=auth, timeout=30, limits=limits) as client:

        async def one() -> None:
            while not stop.is_set() and (result.sent < total or time.monotonic() - started < min_duration_s):
                result.sent += 1
                try:
                    resp = await client.get(url)
                except httpx.HTTPError as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                result.statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    body = resp.json()
                    result.replicas[body["replica"]] += 1
                    result.versions[body["version"]] += 1
                else:
                    result.errors.append(f"{resp.status_code}: {resp.text[:200]}")

        await asyncio.gather(*(one() for _ in range(concurrency)))


class Load:
    """Runs in a background thread until ``total`` requests are sent and ``min_duration_s`` has passed."""

    def __init__(self, url: str, ak: str, sk: str, ca: str, *, total: int = 2000, concurrency: int = 50,
                 min_duration_s: float = 0.0) -> None:
        self.result = LoadResult()
        self.stop_event = threading.Event()
        self.args = (url, ArkAuth(ak, sk), ca, total, concurrency, self.stop_event, min_duration_s, self.result)
        self.thread = threading.Thread(target=lambda: asyncio.run(_run(*self.args)), daemon=True)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def stop_after(self, at_least: int, timeout: float = 120) -> None:
        """Stop once ``at_least`` requests have been sent."""
        deadline = time.monotonic() + timeout
        while self.result.sent < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stop_event.set()

    def __exit__(self, *exc: object) -> None:
        self.thread.join(300)
        assert not self.thread.is_alive(), "load generator did not finish"
