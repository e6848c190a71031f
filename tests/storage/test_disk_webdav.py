"""WebDAV at /dav/ with a real WebDAV client (webdav4): list, put, get, move, delete, quota refusal, and
each user confined to their own disk (password or AK/SK as Basic credentials)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import httpx
import pytest
from webdav4.client import Client as DavClient
from webdav4.client import InsufficientStorage

from tests.storage.conftest import DiskEnv

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
