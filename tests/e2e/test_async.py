"""Asynchronous inference end to end through `arkserve up` (API, gateway, reconciler and dispatcher processes):
202 then the result, a signed callback (retried once) verified with the SDK's helper and logged per attempt,
another user's keys get 404, the size limit's 413, a job longer than its service's request timeout, a replica
taken away with a synchronous and an asynchronous request in flight finishing both, and every accepted request
ending as a result after SIGKILLs of the dispatcher and the gateway."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkserve.sdk import webhooks
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from tests.e2e.conftest import Platform

APP = Path(__file__).with_name("async_app.py")
MAX_BODY = 256 * 1024


class Hooks:
    """A callback receiver on loopback: records every POST; the first ``fail_first`` answers are 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hooks.got.append((dict(self.headers), body))
                status = 500 if len(hooks.got) <= hooks.fail_first else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/s3cr3t-token?sig=also-secret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("async")
    p = Platform(tmp)
    p.env.update({"ARKSERVE_ASYNC_CALLBACK_HOSTS": "127.0.0.1", "ARKSERVE_ASYNC_MAX_BODY_BYTES": str(MAX_BODY),
                  "ARKSERVE_ASYNC_INLINE_BYTES": "4096", "ARKSERVE_ASYNC_LEASE_S": "2",
                  "ARKSERVE_ASYNC_CONCURRENCY": "4"})
    p.start()
    image = tmp / "async-image"
    image.mkdir()
    shutil.copy(APP, image / "app.py")
    p.image = str(image)  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        try:
            p.delete_all_services()
        finally:
            p.stop()


def _service(p: Platform, name: str) -> str:
    with p.client() as c:
        if not any(s["name"] == name for s in c.list_all("/services", limit=100)):
            c.post("/services", {"name": name, "image": p.image, "port": 8000,  # type: ignore[attr-defined]
                                 "command": f"{sys.executable} app.py", "health_path": "/healthz", "replicas": 1})
    return str(p.wait_ready(name, 1)["endpoint"])


def _http(p: Platform, ak: str | None = None, sk: str | None = None) -> httpx.Client:
    prof = p.profile
    return httpx.Client(verify=ssl.create_default_context(cafile=p.ca),
                        auth=ArkAuth(ak or prof.access_key, sk or prof.secret_key), timeout=30)


def _status(p: Platform, request_id: str) -> dict[str, Any]:
    with p.client() as c:
        doc: dict[str, Any] = c.get(f"/async-requests/{request_id}")
    return doc


def test_202_then_the_result_and_a_signed_callback_retried_once(plat: Platform) -> None:
    endpoint = _service(plat, "asy")
    hooks = Hooks(fail_first=1)
    body = os.urandom(20_000)  # over the inline bound: the body goes to a file under the data dir
    try:
        with _http(plat) as h:
            r = h.post(endpoint + "/async/predict?x=1", content=body,
                       headers={"X-Ark-Callback-Url": hooks.url, "X-Test": "kept"})
            assert r.status_code == 202, r.text
            doc = r.json()
            assert doc["status"] == "queued" and doc["status_url"] == f"{endpoint}/async/{doc['id']}"
            assert r.headers["location"] == doc["status_url"]
            done = wait_for(lambda: (s := h.get(doc["status_url"]).json())["status"] == "succeeded" and s, 30,
                            "the result")
            assert done["result"]["status"] == 200 and done["path"] == "/predict?x=1" and done["attempts"] == 1
            res = h.get(doc["status_url"] + "/result")
            assert res.status_code == 200 and res.headers["x-app"] == "async-app"
            echo = res.json()
            assert echo["sha256"] == hashlib.sha256(body).hexdigest() and echo["path"] == "/predict?x=1"
            assert echo["x_test"] == "kept" and echo["key"] == plat.profile.access_key
            # the header form, no body
            r2 = h.get(endpoint + "/plain?delay=0", headers={"X-Ark-Async": "true"})
            assert r2.status_code == 202
            wait_for(lambda: _status(plat, r2.json()["id"])["status"] == "succeeded", 30, "the second result")
        wait_for(lambda: len(hooks.got) >= 2, 30, "the callback's second attempt")
        with plat.client() as c:
            secret = c.get("/webhook-secret")["secret"]
        headers, raw = hooks.got[1]
        hook = webhooks.verify(secret, headers, raw)
        assert hook["id"] == doc["id"] and hook["status"] == "succeeded" and hook["result"]["status"] == 200
        assert json.loads(base64.b64decode(hook["result"]["body_base64"]))["sha256"] == echo["sha256"]
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify(secret, headers, raw.replace(b"succeeded", b"succeedeD"))
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B"), headers, raw)
        st = wait_for(lambda: (s := _status(plat, doc["id"]))["callback"]["state"] == "delivered" and s, 10,
                      "the callback state")
        assert st["callback"]["attempts"] == 2
        with plat.client() as c:
            log = c.get("/services/asy/requests", replica="callback", limit=500)
        assert sorted(r["status"] for r in log if r["request_id"] == doc["id"]) == [200, 500]
        # the receiver's token in the URL's path or query is not written to the log
        assert {r["path"] for r in log if r["request_id"] == doc["id"]} == {hooks.url.split("/hook")[0] + "/…"}
        out = plat.cli("async", "get", doc["id"], "--result")
        assert out.returncode == 0 and echo["sha256"] in out.stdout
        with plat.client() as c:  # the API serves the app's answer with its type, inert in a browser
            res = c._http.get(f"/async-requests/{doc['id']}/result")
        assert res.status_code == 200 and res.json()["sha256"] == echo["sha256"]
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["content-security-policy"].startswith("sandbox")
    finally:
        hooks.close()


def test_only_the_submitters_own_keys_see_a_request(plat: Platform) -> None:
    endpoint = _service(plat, "asy")
    with plat.client() as admin:
        admin.post("/users", {"username": "other", "password": "other-password", "role": "admin"})
        other = admin.post("/keys", {"username": "other"})
        second = admin.post("/keys", {"description": "my second key"})
    with _http(plat) as h:
        doc = h.post(endpoint + "/async/x", content=b"mine").json()
    wait_for(lambda: _status(plat, doc["id"])["status"] == "succeeded", 30, "the result")
    with _http(plat, second["access_key"], second["secret_key"]) as h:
        assert h.get(doc["status_url"]).json()["status"] == "succeeded"  # the same user's other key
    with _http(plat, other["access_key"], other["secret_key"]) as h:  # an admin, so it may call the service
        for url in (doc["status_url"], doc["status_url"] + "/result"):
            r = h.get(url)
            assert r.status_code == 404 and r.json()["code"] == "AsyncRequestNotFound", r.text
            assert r.json()["request_id"]
        assert h.get(endpoint + f"/async/ar_{'0' * 32}").status_code == 404
    with plat.client() as admin:
        admin.post("/users", {"username": "plain", "password": "plain-password"})
        plain = admin.post("/keys", {"username": "plain"})
    out = plat.cli("async", "get", doc["id"])
    assert out.returncode == 0 and "succeeded" in out.stdout
    env = {**plat.env, "ARKSERVE_ACCESS_KEY": plain["access_key"], "ARKSERVE_SECRET_KEY": plain["secret_key"],
           "ARKSERVE_ENDPOINT": plat.profile.endpoint}
    res = subprocess.run([sys.executable, "-m", "arkserve", "async", "get", doc["id"]], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "AsyncRequestNotFound" in res.stderr, res.stderr


def test_anonymous_callbacks_of_a_public_service_are_signed_with_its_own_secret(plat: Platform) -> None:
    with plat.client() as c:
        c.post("/services", {"name": "pubasy", "image": plat.image, "port": 8000, "auth": False,  # type: ignore[attr-defined]
                             "command": f"{sys.executable} app.py", "health_path": "/healthz", "replicas": 1})
    endpoint = str(plat.wait_ready("pubasy", 1)["endpoint"])
    hooks = Hooks()
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=plat.ca), timeout=30) as anonymous:
            r = anonymous.post(endpoint + "/async/x", content=b"a stranger's",
                               headers={"X-Ark-Callback-Url": hooks.url})
        assert r.status_code == 202, r.text
        wait_for(lambda: hooks.got, 30, "the anonymous request's callback")
        headers, raw = hooks.got[0]
        with plat.client() as c:
            owners = c.get("/webhook-secret")["secret"]
            service_secret = c.get("/webhook-secret", service="pubasy")["secret"]
            stranger = c.post("/users", {"username": "stranger", "password": "stranger-password"})
            key = c.post("/keys", {"username": stranger["username"]})
        assert service_secret != owners
        assert webhooks.verify(service_secret, headers, raw)["id"] == r.json()["id"]
        with pytest.raises(webhooks.WebhookVerificationError):  # a stranger's request is not signed as the owner's
            webhooks.verify(owners, headers, raw)
        out = plat.cli("async", "secret", "--service", "pubasy")
        assert out.returncode == 0 and out.stdout.strip() == service_secret
        with plat.client(key["access_key"], key["secret_key"]) as s, pytest.raises(ApiError) as err:
            s.get("/webhook-secret", service="pubasy")  # another user's service: not found
        assert err.value.status == 404
    finally:
        hooks.close()
        with plat.client() as c:
            c.delete("/services/pubasy")


def test_a_body_over_the_limit_gets_413_with_the_json_error(plat: Platform) -> None:
    endpoint = _service(plat, "asy")
    with _http(plat) as h:
        r = h.post(endpoint + "/async/big", content=b"x" * (MAX_BODY + 1))
        assert r.status_code == 413
        err = r.json()
        assert err["code"] == "PayloadTooLarge" and str(MAX_BODY) in err["message"] and err["request_id"]
        chunked = h.post(endpoint + "/async/big", content=iter([b"x" * (MAX_BODY // 4)] * 5))  # no length: counted
        assert chunked.status_code == 413 and chunked.json()["code"] == "PayloadTooLarge"
        assert h.post(endpoint + "/async/fits", content=b"x" * MAX_BODY).status_code == 202
        assert h.post(endpoint + "/big", content=b"x" * (MAX_BODY + 1)).status_code == 200  # not async: no limit


def _kill_part(p: Platform, name: str) -> int:
    parts = json.loads((p.data / "run" / "up.json").read_text())["parts"]
    pid = int(parts[name])
    os.killpg(pid, signal.SIGKILL)  # the part and its own children (the gateway's workers)
    return pid


def _restarted(p: Platform, name: str, old: int) -> bool:
    parts = json.loads((p.data / "run" / "up.json").read_text())["parts"]
    return int(parts.get(name, old)) != old


def test_an_async_job_may_take_longer_than_the_services_timeout(plat: Platform) -> None:
    """A service timeout of 1 s: a synchronous 3 s request gets the gateway's 504, the same work sent
    asynchronously succeeds (the dispatcher's requests wait up to asyncq.request_timeout_s)."""
    with plat.client() as c:
        c.post("/services", {"name": "slow", "image": plat.image, "port": 8000,  # type: ignore[attr-defined]
                             "command": f"{sys.executable} app.py", "health_path": "/healthz", "replicas": 1,
                             "request_timeout_s": 1})
    endpoint = plat.wait_ready("slow", 1)["endpoint"]
    with _http(plat) as h:
        r = h.post(f"{endpoint}/job?delay=3", content=b"work")  # synchronous: the service's timeout
        assert r.status_code == 504 and r.json()["code"] == "UpstreamTimeout", r.text
        assert "within 1 s" in r.json()["message"]
        r = h.post(f"{endpoint}/async/job?delay=3", content=b"work")
        assert r.status_code == 202, r.text
    rid = r.json()["id"]
    doc = wait_for(lambda: (d := _status(plat, rid))["status"] in ("succeeded", "failed") and d, 60, "the job's end")
    assert doc["status"] == "succeeded" and doc["result"]["status"] == 200 and doc["attempts"] == 1, doc


DELAY_S = 12.0  # more than ReconcilerConfig.drain_timeout_s


def inflight(p: Platform) -> int:
    """Requests in progress at the gateways (the admin listener's sum over its workers)."""
    text = httpx.get(f"http://127.0.0.1:{p.admin_port}/metrics", timeout=10).text
    m = re.search(r"^arkserve_gateway_inflight_requests (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def test_scale_to_zero_lets_a_sync_and_an_async_request_in_flight_finish(plat: Platform) -> None:
    """A replica taken away while it answers finishes its requests first: the app answers after ``?delay=12`` and
    dies at once on SIGTERM; the service is scaled to 0 with a synchronous and an asynchronous request in flight on
    its only replica. Both end 200: the reconciler keeps the draining replica until the gateways report nothing on
    it, past ``drain_timeout_s`` (10 s), the old cap (before, it was stopped as soon as the gateways had dropped it:
    the client got a 502 and the async request ended ``failed``, UpstreamError; hostile review, 2026-12-03). Then it
    is stopped within seconds, not at its drain limit (70 s)."""
    with plat.client() as c:
        c.post("/services", {"name": "longjob", "image": plat.image, "port": 8000,  # type: ignore[attr-defined]
                             "health_path": "/healthz", "command": f"{sys.executable} app.py", "replicas": 1})
    svc = plat.wait_ready("longjob", 1)
    replica = svc["instances"][0]["id"]
    prof = plat.profile
    http = httpx.Client(verify=ssl.create_default_context(cafile=plat.ca),
                        auth=ArkAuth(prof.access_key, prof.secret_key), timeout=60)
    sync: dict[str, Any] = {}

    def call() -> None:
        try:
            sync["response"] = http.get(svc["endpoint"] + f"/sync?delay={DELAY_S}")
        except Exception as exc:  # said by the assertion below
            sync["error"] = repr(exc)

    caller = threading.Thread(target=call)
    try:
        caller.start()
        queued = http.post(svc["endpoint"] + f"/async/job?delay={DELAY_S}")
        assert queued.status_code == 202, queued.text
        status_url = queued.json()["status_url"]
        wait_for(lambda: http.get(status_url).json()["status"] == "running", 10, "the async request to run")
        wait_for(lambda: inflight(plat) >= 1, 10, "the sync request to be in flight")
        t0 = time.monotonic()
        with plat.client() as c:
            c.patch("/services/longjob", {"replicas": 0})
            wait_for(lambda: any(e["kind"] == "draining" for e in c.get("/services/longjob/events", limit=100)),
                     10, "the drain")
        done = wait_for(lambda: (s := http.get(status_url).json())["status"] in ("succeeded", "failed") and s,
                        DELAY_S + 10, "the async request to end")
        assert done["status"] == "succeeded", done
        assert done["result"]["status"] == 200 and done["attempts"] == 1
        caller.join(10)
        assert not caller.is_alive(), "no answer to the sync request (held by the gateway after the replica died?)"
        assert "error" not in sync, sync["error"]
        r = sync["response"]
        assert r.status_code == 200, r.text
        assert r.json()["path"] == f"/sync?delay={DELAY_S}"
        assert time.monotonic() - t0 > 10  # both outlived drain_timeout_s on the draining replica
        with plat.client() as c:  # and then it goes, soon
            wait_for(lambda: not c.get("/services/longjob")["instances"], 15, "the replica to stop")
            stopped = [e["message"] for e in c.get("/services/longjob/events", limit=100) if e["kind"] == "stopped"]
        assert stopped == [f"replica {replica} stopped"], stopped  # not cut at its drain limit
    finally:
        caller.join(60)
        http.close()


def test_every_accepted_request_ends_with_its_result_after_sigkills(plat: Platform) -> None:
    endpoint = _service(plat, "asy")
    bodies = {}
    with _http(plat) as h:
        for i in range(40):
            body = f"request {i} ".encode() * (i * 50 + 1)
            r = h.post(endpoint + f"/async/work?delay=0.2&i={i}", content=body)
            assert r.status_code == 202, r.text
            bodies[r.json()["id"]] = body
    ids = list(bodies)

    def finished() -> list[dict[str, Any]]:
        with plat.client() as c:
            return [d for d in (c.get(f"/async-requests/{i}") for i in ids) if d["status"] in ("succeeded", "failed")]

    wait_for(lambda: len(finished()) >= 6, 30, "the first results")
    old = _kill_part(plat, "dispatcher")  # with requests in flight: their leases run out, they are claimed again
    wait_for(lambda: _restarted(plat, "dispatcher", old), 30, "the dispatcher's restart")
    n = len(finished())
    wait_for(lambda: len(finished()) >= n + 4, 30, "results after the dispatcher's restart")
    old = _kill_part(plat, "gateway")  # with requests in flight through it: they are sent again
    wait_for(lambda: _restarted(plat, "gateway", old), 30, "the gateway's restart")
    docs = wait_for(lambda: (f := finished()) and len(f) == len(ids) and f, 90, "every request to end")
    with plat.client() as c:  # through the API: the restarted gateway may still be opening its listeners
        for d in docs:
            assert d["status"] == "succeeded", d
            echo = json.loads(c._send("GET", f"/async-requests/{d['id']}/result").content)
            assert echo["sha256"] == hashlib.sha256(bodies[d["id"]]).hexdigest()
    assert any(d["attempts"] > 1 for d in docs), "no request was in flight during a kill"


def test_the_queue_depth_is_a_prometheus_gauge_on_the_gateway(plat: Platform) -> None:
    def gauge() -> dict[str, int] | None:
        """The gauge's values for the service; None while the gateway's admin port does not answer (the test
        before this one SIGKILLs the gateway, which `up` restarts)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{plat.admin_port}/metrics", timeout=10).text
        except httpx.TransportError:
            return None
        assert "# TYPE arkserve_async_queue_depth gauge" in text
        return {line.split('state="')[1].split('"')[0]: int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith('arkserve_async_queue_depth{service="gauged"')}

    wait_for(lambda: gauge() is not None, 30, "the gateway's admin port")
    endpoint = _service(plat, "gauged")  # its own service: the tests before may leave requests of theirs running
    with _http(plat) as h:
        ids = [h.post(endpoint + f"/async/slow?delay=2&i={i}", content=b"s").json()["id"] for i in range(3)]
        early = h.get(endpoint + f"/async/{ids[-1]}/result")  # behind two others taking 2 s: not ready
        err = early.json()
        assert early.status_code == 409 and err["code"] == "ResultNotReady", early.text
        assert err["request_id"] == early.headers["x-request-id"] != ids[-1]  # this exchange's id, as every error

    seen = wait_for(lambda: (g := gauge()) and sum(g.values()) >= 1 and g, 10, "the gauge to count them")
    assert set(seen) == {"queued", "running"} and sum(seen.values()) <= 3
    wait_for(lambda: all(_status(plat, i)["status"] == "succeeded" for i in ids), 30, "the slow results")
    wait_for(lambda: (g := gauge()) is not None and sum(g.values()) == 0, 10, "the gauge to drop to zero")
