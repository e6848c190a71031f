"""Benchmark: signature verifications per second on one core, against a bare HMAC of the same string.

Run: .venv/bin/python bench/signing.py [--rounds N] [--number N]

The target (docs/signing.md) is verify() <= 3x the cost of ``hmac.new(key, msg, sha256).digest()`` on the
same string to sign. Rounds interleave the candidates so drift in CPU frequency or load hits them alike;
the reported figure per candidate is its median round.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arkserve.auth import signing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=20_000, help="calls per candidate per round")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    # A typical request: POST with a query, JSON body, host with a non-default port, 20-char AK.
    access_key = "AKIDBENCH00000000001"
    secret_key = base64.b64encode(os.urandom(32)).decode()
    key = signing.decode_secret(secret_key)
    now = 1_795_500_000.0
    url, host, body = "/v1/predict?verbose=1&top_k=3", "127.0.0.1:8443", b'{"inputs": [1, 2, 3]}'
    sent = signing.sign_headers(
        method="POST", url=url, host=host, access_key=access_key, secret_key=secret_key, body=body, now=now
    )
    headers = {name.lower(): value for name, value in sent.items()} | {"host": host}
    keys = {access_key: key}
    msg = signing.string_to_sign("POST", url, sent["date"], host, sent["x-ark-content-sha256"]).encode()
    body_hash = signing.content_hash(body)

    def bare_hmac() -> None:
        hmac.new(key, msg, hashlib.sha256).digest()

    def verify() -> None:
        signing.verify(method="POST", url=url, headers=headers, lookup=keys.get, now=now + 5)

    raw = [v.encode() for v in (url, sent["Authorization"], sent["date"], host, sent["x-ark-content-sha256"])]

    def verify_wire() -> None:
        signing.verify_wire(b"POST", raw[0], raw[1], raw[2], raw[3], raw[4], keys.get, now + 5)

    def verify_and_payload() -> None:
        v = signing.verify(method="POST", url=url, headers=headers, lookup=keys.get, now=now + 5)
        signing.check_payload(v.content_hash, body_hash, len(body))

    # Every call a date the parse cache does not hold: 1,800 distinct dates in the skew window, cycled
    # (more than the cache's 512 entries, so an LRU always misses) - the worst case.
    cold = []
    for i in range(1800):
        h = signing.sign_headers(
            method="POST",
            url=url,
            host=host,
            access_key=access_key,
            secret_key=secret_key,
            body=body,
            now=now - 900 + i,
        )
        cold.append({name.lower(): value for name, value in h.items()} | {"host": host})
    cold_iter = itertools.cycle(cold)

    def verify_cold_date() -> None:
        signing.verify(method="POST", url=url, headers=next(cold_iter), lookup=keys.get, now=now)

    def sign() -> None:
        signing.sign_headers(
            method="POST",
            url=url,
            host=host,
            access_key=access_key,
            secret_key=secret_key,
            body=body,
            now=now,
        )

    candidates: dict[str, Callable[[], None]] = {
        "hmac.new(...).digest()": bare_hmac,
        "verify()": verify,
        "verify_wire() (raw bytes)": verify_wire,
        "verify() + check_payload()": verify_and_payload,
        "verify(), uncached date": verify_cold_date,
        "sign_headers()": sign,
    }
    verify()  # must succeed before it is timed
    assert signing.verify_wire(b"POST", raw[0], raw[1], raw[2], raw[3], raw[4], keys.get, now + 5)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            times[name].append(timeit.timeit(fn, number=args.number) / args.number)

    base = statistics.median(times["hmac.new(...).digest()"])
    print(
        f"python {platform.python_version()} on {platform.machine()}; "
        f"{args.rounds} interleaved rounds x {args.number} calls, one core"
    )
    print(f"{'candidate':<30}{'us/call':>10}{'calls/s':>12}{'x hmac':>8}")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<30}{med * 1e6:>10.2f}{1 / med:>12,.0f}{med / base:>8.2f}")
    ratio = statistics.median(times["verify()"]) / base
    print(f"verify / bare hmac = {ratio:.2f} (target <= 3.00): {'OK' if ratio <= 3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
