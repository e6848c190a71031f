"""Asynchronous inference with the platform killed mid-run (issue 18's "Done when"): every 202 must end as a
result or an explicit failure, and every callback must verify with the SDK helper.

Runs ``arkserve up`` (api, 2 gateway workers, reconciler, dispatcher; local runtime, SQLite) in a temp dir with
the app ``tests/e2e/async_app.py`` (``--replicas``, each request taking ``--delay`` s). Submitters send
``--requests`` signed asynchronous requests (each with its own random body and a callback URL on loopback);
a submission that gets no 202 (its gateway was killed) is sent again and counted. Meanwhile each part is killed
with SIGKILL (its process group) in turn — api, gateway, reconciler, dispatcher — each once the previous one is
back and more results came in. Then it waits for every accepted request to end, and reports: accepted, succeeded,
failed (with reasons), results whose body hash is not their request's (must be 0), sends to the app per request
(from the gateway's request log: > 1 is the documented at-least-once), callbacks received, verified, repeated,
missing.

    .venv/bin/python bench/async_kill.py [--requests 1000] [--delay 0.05] [--replicas 2] [--lease 5]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import signal
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arkserve.sdk import webhooks  # noqa: E402
from arkserve.sdk.auth import ArkAuth  # noqa: E402
from tests.e2e.conftest import Platform  # noqa: E402

APP = ROOT / "tests" / "e2e" / "async_app.py"
PARTS = ("api", "gateway", "reconciler", "dispatcher")


class Hooks:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        lock = threading.Lock()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with lock:
                    hooks.got.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def parts(p: Platform) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads((p.data / "run" / "up.json").read_text())["parts"].items()}


def counts(db: Path) -> Counter[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return Counter(dict(conn.execute("SELECT status, count(*) FROM async_requests GROUP BY status").fetchall()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--lease", type=float, default=5.0)
    ap.add_argument("--submitters", type=int, default=8)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ark-async-kill-"))
    p = Platform(tmp)
    p.env.update({"ARKSERVE_ASYNC_CALLBACK_HOSTS": "127.0.0.1", "ARKSERVE_ASYNC_LEASE_S": str(args.lease)})
    p.start()
    hooks = Hooks()
    image = tmp / "async-image"
    image.mkdir()
    (image / "app.py").write_bytes(APP.read_bytes())
    try:
        with p.client() as c:
            c.post("/services", {"name": "kill", "image": str(image), "port": 8000, "replicas": args.replicas,
                                 "command": f"{sys.executable} app.py", "health_path": "/healthz"})
            secret = c.get("/webhook-secret")["secret"]
        endpoint = p.wait_ready("kill", args.replicas)["endpoint"]
        prof = p.profile
        ctx = ssl.create_default_context(cafile=p.ca)
        accepted: dict[str, str] = {}
        resubmits = Counter[str]()
        lock = threading.Lock()
        t0 = time.monotonic()

        def submit(i: int) -> None:
            body = os.urandom(64 + i % 4096)
            with httpx.Client(verify=ctx, auth=ArkAuth(prof.access_key, prof.secret_key), timeout=30) as h:
                while True:
                    try:
                        r = h.post(f"{endpoint}/async/work?delay={args.delay}&i={i}", content=body,
                                   headers={"X-Ark-Callback-Url": hooks.url})
                    except httpx.HTTPError as exc:
                        with lock:
                            resubmits[type(exc).__name__] += 1
                        time.sleep(0.2)
                        continue
                    if r.status_code == 202:
                        with lock:
                            accepted[r.json()["id"]] = hashlib.sha256(body).hexdigest()
                        return
                    with lock:
                        resubmits[f"HTTP {r.status_code}"] += 1
                    time.sleep(0.2)

        pool = ThreadPoolExecutor(args.submitters)
        futures = [pool.submit(submit, i) for i in range(args.requests)]
        db = p.data / "arkserve.db"
        kills = []
        step = max(1, args.requests // 6)
        for n, part in enumerate(PARTS, start=1):
            while counts(db)["succeeded"] + counts(db)["failed"] < n * step:
                time.sleep(0.1)
            old = parts(p)[part]
            os.killpg(old, signal.SIGKILL)
            t_kill = time.monotonic()
            while parts(p).get(part, old) == old:
                time.sleep(0.05)
            kills.append((part, round(t_kill - t0, 1), round(time.monotonic() - t_kill, 1)))
            print(f"killed {part} at {t_kill - t0:.1f}s; restarted after {time.monotonic() - t_kill:.1f}s", flush=True)
        for f in futures:
            f.result()
        submitted_at = time.monotonic() - t0
        deadline = time.monotonic() + 600
        while True:
            c2 = counts(db)
            if c2["succeeded"] + c2["failed"] >= len(accepted) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ended_at = time.monotonic() - t0
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            rows = {r[0]: r[1:] for r in conn.execute("SELECT id, status, error, attempts FROM async_requests")}
            sends = Counter(r[0] for r in conn.execute(
                "SELECT request_id FROM request_log WHERE replica != 'callback' AND path LIKE '/work%'"))
        wrong = 0
        with p.client() as c:
            for rid, digest in accepted.items():
                if rows.get(rid, ("missing",))[0] == "succeeded":
                    resp = c._send("GET", f"/async-requests/{rid}/result")
                    wrong += json.loads(resp.content)["sha256"] != digest
        deadline = time.monotonic() + 120
        while len({h.get("X-Ark-Webhook-Id") for h, _ in hooks.got} & set(accepted)) < len(accepted) and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        verified, bad = Counter[str](), 0
        for headers, body in list(hooks.got):
            try:
                verified[webhooks.verify(secret, headers, body)["id"]] += 1
            except webhooks.WebhookVerificationError:
                bad += 1
        status = Counter(rows.get(rid, ("missing",))[0] for rid in accepted)
        reasons = Counter((rows[rid][1] or "")[:80] for rid in accepted if rows.get(rid, ("",))[0] == "failed")
        print(json.dumps({
            "requests": args.requests, "accepted": len(accepted), "resubmitted": dict(resubmits),
            "status": dict(status), "failed_reasons": dict(reasons), "wrong_results": wrong,
            "sends_per_request": dict(Counter(sends[rid] for rid in accepted)),
            "claims_per_request": dict(Counter(rows[rid][2] for rid in accepted if rid in rows)),
            "callbacks": {"received": len(hooks.got), "verified_ids": len(verified), "bad_signature": bad,
                          "repeated": sum(n - 1 for n in verified.values()),
                          "missing": len(set(accepted) - set(verified))},
            "kills": [{"part": k, "at_s": a, "back_after_s": b} for k, a, b in kills],
            "all_submitted_s": round(submitted_at, 1), "all_ended_s": round(ended_at, 1)}, indent=1))
    finally:
        try:
            p.delete_all_services()
        finally:
            p.stop()
            hooks.server.shutdown()


if __name__ == "__main__":
    main()
