"""WebDAV at /dav/ with a real WebDAV client (webdav4): list, put, get, move, delete, quota refusal (also for
parallel uploads of unknown size), each user confined to their own disk (password or AK/SK as Basic
credentials), password guessing throttled like the console's login, and dot segments refused."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from webdav4.client import Client as DavClient
from webdav4.client import InsufficientStorage

from tests.storage.conftest import DiskEnv
from tests.storage.parallel_uploads import in_parallel, stored_bytes, trickle

_open: list[DavClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().http.close()


def _dav(env: DiskEnv, user: str, secret: str) -> DavClient:
    client = DavClient(f"{env.api.url}/dav/", auth=(user, secret), timeout=30)
    _open.append(client)
    return client


def test_list_put_get_with_a_password_and_with_ak_sk(disk_env: DiskEnv) -> None:
    alice = disk_env.alice
    dav = _dav(disk_env, alice.name, alice.password)
    data = os.urandom(200_000)
    dav.mkdir("datasets")
    dav.upload_fileobj(io.BytesIO(data), "datasets/blob.bin", overwrite=True)
    assert (alice.root / "datasets" / "blob.bin").read_bytes() == data
    names = {(e["name"], e["type"]) for e in dav.ls("datasets", detail=True)}  # type: ignore[index, union-attr]
    assert names == {("datasets/blob.bin", "file")}
    out = io.BytesIO()
    dav.download_fileobj("datasets/blob.bin", out)
    assert out.getvalue() == data
    # the same disk with an access key as the user name and its secret key as the password
    by_key = _dav(disk_env, alice.ak, alice.sk)
    assert by_key.exists("datasets/blob.bin")
    by_key.move("datasets/blob.bin", "datasets/renamed.bin")
    assert (alice.root / "datasets" / "renamed.bin").exists() and not (alice.root / "datasets" / "blob.bin").exists()
    by_key.remove("datasets")
    assert not (alice.root / "datasets").exists()
    # and what the API wrote is what WebDAV reads
    alice.http.put("/files/from-api.txt", content=b"hi")
    out = io.BytesIO()
    by_key.download_fileobj("from-api.txt", out)
    assert out.getvalue() == b"hi"


def test_wrong_credentials_and_other_users(disk_env: DiskEnv) -> None:
    url = f"{disk_env.api.url}/dav/"
    assert httpx.request("PROPFIND", url, headers={"Depth": "1"}).status_code == 401
    for creds in [("alice", "wrong-password"), (disk_env.alice.ak, disk_env.bob.sk), ("nobody", "x" * 10)]:
        assert httpx.request("PROPFIND", url, headers={"Depth": "1"}, auth=creds).status_code == 401
    disk_env.alice.http.put("/files/alice-only.txt", content=b"secret")
    bob = _dav(disk_env, "bob", disk_env.bob.password)
    assert not bob.exists("alice-only.txt")
    assert bob.ls("", detail=False) == []
    bob.upload_fileobj(io.BytesIO(b"bob's"), "alice-only.txt", overwrite=True)
    assert (disk_env.alice.root / "alice-only.txt").read_bytes() == b"secret"
    assert (disk_env.bob.root / "alice-only.txt").read_bytes() == b"bob's"


def test_quota_refusal_stores_nothing(disk_env: DiskEnv) -> None:
    disk_env.set_quota("alice", 1000)
    dav = _dav(disk_env, "alice", disk_env.alice.password)
    dav.upload_fileobj(io.BytesIO(b"x" * 900), "fits.bin", overwrite=True)
    with pytest.raises(InsufficientStorage):  # 507, WebDAV's quota answer
        dav.upload_fileobj(io.BytesIO(b"y" * 200), "too-big.bin", overwrite=True)
    raw = httpx.put(f"{disk_env.api.url}/dav/too-big.bin", content=b"y" * 200,
                    auth=("alice", disk_env.alice.password))
    assert raw.status_code == 507 and "900 of 1000 bytes used" in raw.text
    assert not (disk_env.alice.root / "too-big.bin").exists()
    assert list((disk_env.api.data_dir / "disks/.staging/alice/parts").iterdir()) == []


def test_paths_and_links_follow_the_api_rules(disk_env: DiskEnv, tmp_path: object) -> None:
    import pathlib

    outside = pathlib.Path(str(tmp_path)) / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    disk_env.alice.root.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, disk_env.alice.root / "escape")
    auth = ("alice", disk_env.alice.password)
    base = f"{disk_env.api.url}/dav"
    assert httpx.get(f"{base}/escape/secret.txt", auth=auth).status_code == 400
    assert httpx.put(f"{base}/escape/planted.txt", content=b"x", auth=auth).status_code in (400, 409)
    assert httpx.put(f"{base}/{'n' * 256}", content=b"x", auth=auth).status_code == 400
    listing = httpx.request("PROPFIND", f"{base}/", headers={"Depth": "1"}, auth=auth)
    assert listing.status_code == 207 and "escape" not in listing.text
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


class _Unsized:
    """A file object whose length a client cannot learn (no ``fileno``, no ``seek``): webdav4 sends it chunked."""

    def __init__(self, size: int) -> None:
        self.pieces = trickle(size)

    def read(self, n: int = -1) -> bytes:
        return next(self.pieces, b"")


def test_parallel_uploads_of_unknown_size_share_the_quota(disk_env: DiskEnv) -> None:
    limit = 1_000_000
    disk_env.set_quota("alice", limit)
    names = ["one.bin", "two.bin", "three.bin"]  # 600 kB each: any one fits, no two do

    def upload(name: str) -> str:
        dav = _dav(disk_env, "alice", disk_env.alice.password)
        dav.upload_fileobj(_Unsized(600_000), name, overwrite=True)  # type: ignore[arg-type]
        return "stored"

    results, peak = in_parallel(disk_env, {n: lambda n=n: upload(n) for n in names})
    refused = [n for n, r in results.items() if isinstance(r, InsufficientStorage)]  # 507
    assert len(refused) >= 2 and all(r == "stored" for n, r in results.items() if n not in refused), results
    assert peak <= limit, f"{peak} bytes held at once, over the quota of {limit}"
    assert sorted(p.name for p in disk_env.alice.root.iterdir()) == sorted(set(names) - set(refused))
    assert list((disk_env.api.data_dir / "disks/.staging/alice/parts").iterdir()) == []
    assert stored_bytes(disk_env) <= limit


def test_password_guessing_is_throttled_and_recorded(disk_env: DiskEnv) -> None:
    url = f"{disk_env.api.url}/dav/"
    codes: list[int] = []
    while 429 not in codes:  # the first 5 failures are free, the 6th makes the account wait a second
        assert len(codes) < 8, codes
        r = httpx.request("PROPFIND", url, headers={"Depth": "0"}, auth=("alice", f"wrong-{len(codes)}"))
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5 and set(codes) == {401, 429}, codes
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()  # the API's error shape, not wsgidav's HTML page
    assert body["code"] == "LoginThrottled" and body["request_id"] == r.headers["x-request-id"], body
    right = httpx.request("PROPFIND", url, headers={"Depth": "0"}, auth=("alice", disk_env.alice.password))
    assert right.status_code == 429  # no hash is computed while the account waits
    by_key = httpx.request("PROPFIND", url, headers={"Depth": "0"}, auth=(disk_env.alice.ak, disk_env.alice.sk))
    assert by_key.status_code == 207  # an access key is no password: never throttled
    with disk_env.api.client() as admin:
        events = admin.get("/security/events", params={"username": "alice"})
    assert len(events) == codes.count(401)
    assert all(e["message"].startswith("webdav login:") and e["client"] == "127.0.0.1" for e in events)


def test_a_clients_parallel_first_requests_share_one_password_check(disk_env: DiskEnv) -> None:
    url = f"{disk_env.api.url}/dav/"
    barrier = threading.Barrier(8)

    def propfind() -> int:
        barrier.wait()
        return httpx.request("PROPFIND", url, headers={"Depth": "0"},
                             auth=("alice", disk_env.alice.password)).status_code

    results, _peak = in_parallel(disk_env, {str(i): propfind for i in range(8)})
    assert sorted(results.values()) == [207] * 8, results  # never 429 LoginBusy: one hash, the rest wait for it


def _raw(env: DiskEnv, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    """One request on its own connection, read to the end: (status line, headers, body)."""
    host, port = env.api.url.removeprefix("http://").split(":")
    auth = base64.b64encode(f"alice:{env.alice.password}".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        raw = b""
        while data := s.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, rest


def test_dot_segments_are_refused_with_a_whole_answer(disk_env: DiskEnv) -> None:
    disk_env.alice.http.put("/files/f.txt", content=b"hello")
    for method, path, body in [("PUT", "/dav/%2e%2e/escape.txt", b"x"), ("GET", "/dav/%2e%2e/f.txt", b""),
                               ("PROPFIND", "/dav/a/%2e%2e", b""), ("GET", "/dav/./f.txt", b""),
                               ("DELETE", "/dav/a/../f.txt", b"")]:
        status, headers, got = _raw(disk_env, method, path, body)
        assert status.startswith("HTTP/1.1 400"), (method, path, status)
        assert int(headers["content-length"]) == len(got) > 0, (method, path, headers, got)
        assert json.loads(got)["code"] == "BadPath"
    assert (disk_env.alice.root / "f.txt").read_bytes() == b"hello"
    assert not any(p.name == "escape.txt" for p in disk_env.api.data_dir.rglob("*"))


def test_a_name_that_is_not_utf8_is_left_out_of_a_listing(disk_env: DiskEnv) -> None:
    alice = disk_env.alice
    data = alice.root / "data"
    data.mkdir(parents=True)
    (data / "ok.txt").write_bytes(b"ok")
    os.close(os.open(os.fsencode(data) + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))  # a replica made it
    dav = _dav(disk_env, alice.name, alice.password)
    assert [e["name"] for e in dav.ls("data", detail=True)] == ["data/ok.txt"]  # type: ignore[index, union-attr]
