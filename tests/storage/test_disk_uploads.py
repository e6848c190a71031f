"""Uploads: quota edges (413 before a byte is stored), parallel uploads of unknown size sharing the quota,
resumable sessions continuing after an interrupted request, concurrent uploads of one name (one wins whole,
the other gets 409), signed body hashes."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from arkserve.auth import signing
from tests.storage.conftest import DiskEnv, DiskUser
from tests.storage.parallel_uploads import in_parallel, stored_bytes, trickle


def _staged(env: DiskEnv, user: str = "alice") -> list[str]:
    parts = env.api.data_dir / "disks" / ".staging" / user / "parts"
    return sorted(p.name for p in parts.iterdir()) if parts.exists() else []


def test_quota_edges(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    disk_env.set_quota("alice", 1000)
    assert a.put("/files/a", content=b"x" * 600).status_code == 201
    assert a.put("/files/b", content=b"x" * 400).status_code == 201  # exactly at the limit
    over = a.put("/files/c", content=b"x")
    assert over.status_code == 413
    body = over.json()
    assert body["code"] == "QuotaExceeded" and body["used"] == 1000 and body["limit"] == 1000
    assert "1000 of 1000 bytes used" in body["message"]
    assert not (disk_env.alice.root / "c").exists() and _staged(disk_env) == []
    # replacing a file needs room only for the difference
    assert a.put("/files/b", params={"overwrite": "true"}, content=b"y" * 400).status_code == 201
    assert a.put("/files/b", params={"overwrite": "true"}, content=b"y" * 401).status_code == 413
    assert (disk_env.alice.root / "b").read_bytes() == b"y" * 400
    # a resumable session reserves its whole size up front
    a.delete("/files/b")
    session = a.post("/uploads", json={"path": "big", "size": 300})
    assert session.status_code == 201
    assert a.get("/usage").json()["reserved"] == 300
    assert a.put("/files/d", content=b"x" * 101).status_code == 413  # 600 + 300 reserved + 101 > 1000
    assert a.post("/uploads", json={"path": "e", "size": 101}).status_code == 413
    assert a.put("/files/d", content=b"x" * 100).status_code == 201
    a.delete(f"/uploads/{session.json()['id']}")
    assert a.get("/usage").json()["reserved"] == 0


def test_quota_without_content_length_stops_the_stream(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    disk_env.set_quota("alice", 100_000)

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"z" * 10_000

    r = a.put("/files/streamed", content=chunks())  # chunked: no Content-Length to check up front
    assert r.status_code == 413 and r.json()["code"] == "QuotaExceeded"
    assert not (disk_env.alice.root / "streamed").exists() and _staged(disk_env) == []


def test_parallel_uploads_without_content_length_share_the_quota(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    limit = 1_000_000
    disk_env.set_quota("alice", limit)
    names = ["one.bin", "two.bin", "three.bin"]  # 600 kB each: any one fits, no two do
    results, peak = in_parallel(disk_env, {n: lambda n=n: a.put(f"/files/{n}", content=trickle(600_000))
                                           for n in names})
    codes = {n: r.status_code if isinstance(r, httpx.Response) else r for n, r in results.items()}
    assert set(codes.values()) <= {201, 413} and list(codes.values()).count(413) >= 2, codes
    assert all(r.json()["code"] == "QuotaExceeded" for r in results.values()
               if isinstance(r, httpx.Response) and r.status_code == 413)
    assert peak <= limit, f"{peak} bytes held at once, over the quota of {limit}"
    assert sorted(p.name for p in disk_env.alice.root.iterdir()) == sorted(n for n in names if codes[n] == 201)
    assert _staged(disk_env) == [] and stored_bytes(disk_env) <= limit
    assert a.get("/usage").json()["reserved"] == 0


def test_an_upload_of_unknown_size_holds_its_bytes_against_the_others(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    disk_env.set_quota("alice", 1_000_000)
    halfway, release = threading.Event(), threading.Event()
    results: dict[str, httpx.Response] = {}

    def body() -> Iterator[bytes]:
        yield from trickle(700_000, pause_s=0)
        halfway.set()
        release.wait(20)
        yield b"t" * 100_000

    t = threading.Thread(target=lambda: results.setdefault("a", a.put("/files/streamed.bin", content=body())))
    t.start()
    assert halfway.wait(10)
    _wait(lambda: stored_bytes(disk_env) == 700_000, "the first 700 kB to be staged")
    # with Content-Length and no body hash (a generator is not signed): the splice path, checked before a byte
    other = a.put("/files/sized.bin", content=iter([b"s" * 400_000]), headers={"Content-Length": "400000"})
    assert other.status_code == 413 and other.json()["code"] == "QuotaExceeded", other.text
    assert a.put("/files/small.bin", content=iter([b"s" * 50_000]), headers={"Content-Length": "50000"}) \
        .status_code == 201
    release.set()
    t.join(30)
    assert results["a"].status_code == 201, results["a"].text
    assert sorted(p.name for p in disk_env.alice.root.iterdir()) == ["small.bin", "streamed.bin"]
    assert stored_bytes(disk_env) == 850_000 and _staged(disk_env) == []


def _raw_patch(env: DiskEnv, user: DiskUser, url_path: str, declared: int, sent: bytes) -> None:
    """A signed PATCH that announces ``declared`` bytes, sends ``sent`` and drops the connection."""
    parts = urlsplit(env.api.url)
    host = f"{parts.hostname}:{parts.port}"
    headers = signing.sign_headers(method="PATCH", url=url_path, host=host, access_key=user.ak,
                                   secret_key=user.sk, body=None, now=time.time())
    head = f"PATCH {url_path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port)) as s:
        s.sendall(head.encode() + sent)
        time.sleep(0)  # the bytes are in the kernel's hands; closing now interrupts the request
        s.shutdown(socket.SHUT_RDWR)


def _wait(cond: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_interrupted_upload_resumes_from_the_stored_offset(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    data = os.urandom(3 * 1024 * 1024 + 17)
    sid = a.post("/uploads", json={"path": "models/w.bin", "size": len(data)}).json()["id"]
    first = 1024 * 1024 + 5
    _raw_patch(disk_env, disk_env.alice, f"/api/v1/disk/uploads/{sid}?offset=0", len(data), data[:first])
    _wait(lambda: a.get(f"/uploads/{sid}").json()["offset"] == first, "the first part to be stored")
    assert not (disk_env.alice.root / "models" / "w.bin").exists()  # no half file under the real name
    assert [s["id"] for s in a.get("/uploads").json()] == [sid]
    wrong = a.patch(f"/uploads/{sid}", params={"offset": 0}, content=data)
    while wrong.json()["code"] == "UploadInProgress":  # the interrupted request may still be closing
        wrong = a.patch(f"/uploads/{sid}", params={"offset": 0}, content=data)
    assert wrong.status_code == 409 and wrong.json()["code"] == "OffsetMismatch" and wrong.json()["offset"] == first
    done = a.patch(f"/uploads/{sid}", params={"offset": first}, content=data[first:])
    assert done.status_code == 200, done.text
    assert done.json()["complete"] is True and done.json()["entry"]["size"] == len(data)
    assert (disk_env.alice.root / "models" / "w.bin").read_bytes() == data
    assert a.get(f"/uploads/{sid}").status_code == 404
    assert a.get("/uploads").json() == [] and _staged(disk_env) == []


def test_a_session_never_passes_its_size(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    sid = a.post("/uploads", json={"path": "s", "size": 4}).json()["id"]
    r = a.patch(f"/uploads/{sid}", params={"offset": 0}, content=b"12345")
    assert r.status_code == 400 and r.json()["code"] == "SizeMismatch"
    assert not (disk_env.alice.root / "s").exists()


def test_concurrent_uploads_of_one_name(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    first_part_sent, release = threading.Event(), threading.Event()
    body_a, body_b = b"A" * 2_000_000, b"B" * 2_000_000
    results: dict[str, httpx.Response] = {}

    def slow() -> Iterator[bytes]:
        yield body_a[:500_000]
        first_part_sent.set()
        release.wait(20)
        yield body_a[500_000:]

    def upload_a() -> None:
        results["a"] = a.put("/files/same.bin", content=slow(), headers={"Content-Length": str(len(body_a))})

    t = threading.Thread(target=upload_a)
    t.start()
    first_part_sent.wait(10)
    _wait(lambda: any(os.path.getsize(disk_env.api.data_dir / "disks/.staging/alice/parts" / n) > 0
                      for n in _staged(disk_env)), "upload A to store bytes")
    second = a.put("/files/same.bin", content=body_b)
    assert second.status_code == 409 and second.json()["code"] == "UploadInProgress"
    second_session = a.post("/uploads", json={"path": "same.bin", "size": 10})
    assert second_session.status_code == 409
    release.set()
    t.join(30)
    assert results["a"].status_code == 201
    assert (disk_env.alice.root / "same.bin").read_bytes() == body_a

    # and racing from the same start line, several times: always one whole winner and one 409
    for i in range(4):
        barrier = threading.Barrier(2)
        answers: dict[str, int] = {}

        def put(tag: bytes, i: int = i, barrier: threading.Barrier = barrier,
                answers: dict[str, int] = answers) -> None:
            payload = tag * 1_000_000
            barrier.wait()
            answers[tag.decode()] = a.put(f"/files/race{i}", content=payload).status_code

        threads = [threading.Thread(target=put, args=(tag,)) for tag in (b"A", b"B")]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert sorted(answers.values()) == [201, 409], answers
        winner = next(k for k, v in answers.items() if v == 201)
        assert (disk_env.alice.root / f"race{i}").read_bytes() == winner.encode() * 1_000_000
    assert _staged(disk_env) == []


def test_a_signed_body_hash_is_checked_after_streaming(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    ok = a.put("/files/signed.txt", content=b"signed body")  # ArkAuth signs bytes bodies with their hash
    assert ok.status_code == 201
    parts = urlsplit(disk_env.api.url)
    host = f"{parts.hostname}:{parts.port}"
    headers = signing.sign_headers(method="PUT", url="/api/v1/disk/files/forged.txt", host=host,
                                   access_key=disk_env.alice.ak, secret_key=disk_env.alice.sk,
                                   body=b"what was signed", now=time.time())
    forged = httpx.put(f"{disk_env.api.url}/api/v1/disk/files/forged.txt", content=b"something else",
                       headers=headers)
    assert forged.status_code == 401 and forged.json()["code"] == "ContentHashMismatch"
    assert not (disk_env.alice.root / "forged.txt").exists() and _staged(disk_env) == []
    claimed = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    assert claimed != signing.EMPTY_CONTENT_HASH


def test_unauthenticated_uploads_are_refused(disk_env: DiskEnv) -> None:
    r = httpx.put(f"{disk_env.api.url}/api/v1/disk/files/anon.txt", content=b"x")
    assert r.status_code == 401
    assert not (disk_env.api.data_dir / "disks").exists() or not any(
        p.name == "anon.txt" for p in (disk_env.api.data_dir / "disks").rglob("*"))
