"""Classify the images of a folder through a signed arkserve endpoint.

    python client.py https://127.0.0.1:20001 images/            # one request per image
    python client.py https://127.0.0.1:20001 images/ --count 40 # 40 requests cycling over them

Each image goes as the multipart field ``content`` to ``<endpoint>/flowers``, signed with the arkserve
SDK (``ArkRequestsAuth``); one line ``<file> <class>`` is printed per answer. Keys come from
``--access-key/--secret-key``, else ``ARKSERVE_ACCESS_KEY``/``ARKSERVE_SECRET_KEY``, else the CLI profile
(``--profile``, default ``$ARKSERVE_PROFILE`` or ``default``). TLS trust: ``--ca`` alone, else both
``REQUESTS_CA_BUNDLE`` and the profile's ``ca_bundle`` (the gateway CA of ``arkserve up``) when set.
Exits 1 when any request failed.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

from arkserve.sdk.auth import ArkRequestsAuth
from arkserve.sdk.profiles import config_path, load_all

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("endpoint", help="service endpoint, e.g. https://127.0.0.1:20001")
    ap.add_argument("folder", type=Path, help="folder of images")
    ap.add_argument("--access-key", default=None)
    ap.add_argument("--secret-key", default=None)
    ap.add_argument("--profile", default=os.environ.get("ARKSERVE_PROFILE") or "default")
    ap.add_argument("--ca", default=None, help="CA bundle that signed the gateway certificate")
    ap.add_argument("--count", type=int, default=0, help="send N requests cycling over the images")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--request-ids", type=Path, default=None, help="append each X-Request-ID to this file")
    return ap.parse_args(argv)


def credentials(args: argparse.Namespace) -> tuple[str, str, list[str]]:
    """``(access_key, secret_key, ca_bundles)``: keys from flags, then the environment, then the CLI profile;
    trust from ``--ca`` alone, else ``REQUESTS_CA_BUNDLE`` plus the profile's ``ca_bundle``."""
    ak = args.access_key or os.environ.get("ARKSERVE_ACCESS_KEY")
    sk = args.secret_key or os.environ.get("ARKSERVE_SECRET_KEY")
    profile = load_all(config_path()).get(args.profile)
    if not (ak and sk):
        if profile is None:
            sys.exit(f"client: no keys: pass --access-key/--secret-key, set ARKSERVE_ACCESS_KEY/ARKSERVE_SECRET_KEY, "
                     f"or create profile {args.profile!r} in {config_path()} (`arkserve up` does)")
        ak, sk = ak or profile.access_key, sk or profile.secret_key
    if args.ca:
        return ak, sk, [args.ca]
    bundles = [os.environ.get("REQUESTS_CA_BUNDLE", ""), profile.ca_bundle if profile else ""]
    return ak, sk, [b for b in bundles if b and Path(b).is_file()]


def verify_setting(bundles: list[str]) -> str | bool:
    """What ``requests`` gets as ``verify``: always explicit, so ``CURL_CA_BUNDLE`` cannot override it."""
    if not bundles:
        return True
    if len(bundles) == 1:
        return bundles[0]
    fd, combined = tempfile.mkstemp(prefix="flowers-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(Path(b).read_text() for b in bundles))
    atexit.register(os.unlink, combined)
    return combined


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        sys.exit(f"client: no images in {args.folder}")
    ak, sk, bundles = credentials(args)
    verify = verify_setting(bundles)
    try:
        auth = ArkRequestsAuth(ak, sk)
    except ValueError as exc:
        sys.exit(f"client: {exc}")
    url = args.endpoint.rstrip("/") + "/flowers"
    todo = itertools.islice(itertools.cycle(images), args.count) if args.count else images
    failed, replicas, latencies = 0, Counter(), []
    with requests.Session() as session:
        for path in todo:
            t0 = time.monotonic()
            try:
                with path.open("rb") as f:
                    r = session.post(url, files={"content": (path.name, f, "image/jpeg")}, auth=auth,
                                     verify=verify, timeout=args.timeout)
            except requests.RequestException as exc:
                failed += 1
                print(f"{path.name} ERROR {exc}", file=sys.stderr)
                continue
            latencies.append(time.monotonic() - t0)
            if args.request_ids and r.headers.get("X-Request-ID"):
                with args.request_ids.open("a") as f:
                    f.write(r.headers["X-Request-ID"] + "\n")
            if r.status_code != 200:
                failed += 1
                print(f"{path.name} ERROR {r.status_code} {r.text.strip()[:300]}", file=sys.stderr)
                continue
            body = r.json()
            replicas[body.get("replica") or "?"] += 1
            print(f"{path.name} {body['class']}", flush=True)
    if latencies:
        mean_ms = 1000 * sum(latencies) / len(latencies)
        print(f"# {len(latencies)} answered, {failed} failed, mean latency {mean_ms:.0f} ms, "
              f"by replica (as reported): {dict(replicas)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
