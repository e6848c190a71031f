"""The quota holds when an upload replaces a file that goes away meanwhile.

An upload onto an existing file needs room only for the difference: the old file's bytes are credited when
the upload starts. Moving that file away (or deleting it) before the upload is installed must not keep the
credit: install checks the quota again (413 ``QuotaExceeded``, 507 over WebDAV), a resumable session keeps its
staged bytes to finish once there is room, and a one-shot upload stores nothing. Through the API on loopback
(resumable, one-shot ``PUT ?overwrite=true``, WebDAV ``PUT``), and on the storage layer for a move that lands
between install's look at the target and its rename.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from arkserve.storage.disk import Disk, QuotaExceeded
from arkserve.storage.uploads import Uploads
from tests.storage.conftest import DiskEnv

LIMIT = 1_000_000
SIZE = 600_000  # one file fits, two do not


def _wait(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _staged(env: DiskEnv) -> dict[str, int]:
    parts = env.api.data_dir / "disks" / ".staging" / "alice" / "parts"
    return {p.name: p.stat().st_size for p in parts.iterdir()} if parts.exists() else {}


def _with_x(env: DiskEnv) -> bytes:
    """Alice's quota set to LIMIT, with the SIZE-byte file X on her disk."""
    env.set_quota("alice", LIMIT)
    old = os.urandom(SIZE)
    assert env.alice.http.put("/files/X", content=old).status_code == 201
    assert env.alice.http.put("/files/Z", content=b"z" * SIZE).status_code == 413  # no room for a second one
    return old


def _assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["code"] == "QuotaExceeded" and body["limit"] == LIMIT and body["used"] == SIZE, body
    assert f"{SIZE} of {LIMIT} bytes used" in body["message"] and '"X"' in body["message"]
    assert body["request_id"]


def test_a_resumable_overwrite_is_refused_when_the_old_file_moved_away(disk_env: DiskEnv) -> None:
    a, root = disk_env.alice.http, disk_env.alice.root
    old = _with_x(disk_env)
    new = os.urandom(SIZE)
    session = a.post("/uploads", json={"path": "X", "size": SIZE, "overwrite": True})
    assert session.status_code == 201, session.text  # X's bytes credited: fits
    sid = session.json()["id"]
    assert a.post("/move", json={"src": "X", "dst": "Y"}).status_code == 200
    _assert_refused(a.patch(f"/uploads/{sid}", params={"offset": 0}, content=new))
    assert not (root / "X").exists() and (root / "Y").read_bytes() == old
    assert a.get("/usage").json()["used"] == SIZE
    # the session keeps its bytes: room freed, an empty PATCH at the end installs them
    assert a.get(f"/uploads/{sid}").json()["offset"] == SIZE
    assert _staged(disk_env) == {f"{sid}.part": SIZE}
    assert a.delete("/files/Y").status_code == 204
    done = a.patch(f"/uploads/{sid}", params={"offset": SIZE}, content=b"")
    assert done.status_code == 200 and done.json()["complete"] is True, done.text
    assert (root / "X").read_bytes() == new and _staged(disk_env) == {}
    usage = a.get("/usage").json()
    assert usage["used"] == SIZE and usage["reserved"] == 0
    # a replaced file that shrank, its old bytes gone with it: still only the difference is needed
    assert a.put("/files/small", content=b"s" * 300_000).status_code == 201
    sid = a.post("/uploads", json={"path": "X", "size": SIZE, "overwrite": True}).json()["id"]
    assert a.post("/move", json={"src": "small", "dst": "X", "overwrite": True}).status_code == 200
    done = a.patch(f"/uploads/{sid}", params={"offset": 0}, content=b"n" * SIZE)
    assert done.status_code == 200 and done.json()["complete"] is True, done.text
    assert (root / "X").read_bytes() == b"n" * SIZE and a.get("/usage").json()["used"] == SIZE


def _held_body(data: bytes, halfway: threading.Event, release: threading.Event) -> Iterator[bytes]:
    yield data[: len(data) // 2]
    halfway.set()
    assert release.wait(20)
    yield data[len(data) // 2:]


def _streamed_while_moved(env: DiskEnv, send: Callable[[Iterator[bytes]], httpx.Response]) -> httpx.Response:
    """``send`` a SIZE-byte body onto X; halfway through, X is moved to Y."""
    halfway, release = threading.Event(), threading.Event()
    result: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: result.setdefault("r", send(_held_body(b"n" * SIZE, halfway, release))))
    t.start()
    try:
        assert halfway.wait(10)
        _wait(lambda: any(n > 0 for n in _staged(env).values()), "the first half to be staged")
        assert env.alice.http.post("/move", json={"src": "X", "dst": "Y"}).status_code == 200
    finally:
        release.set()
        t.join(30)
    return result["r"]


def test_a_one_shot_overwrite_is_refused_when_the_old_file_moves_away_meanwhile(disk_env: DiskEnv) -> None:
    a, root = disk_env.alice.http, disk_env.alice.root
    old = _with_x(disk_env)
    r = _streamed_while_moved(disk_env, lambda body: a.put(
        "/files/X", params={"overwrite": "true"}, content=body, headers={"Content-Length": str(SIZE)}))
    _assert_refused(r)
    assert not (root / "X").exists() and (root / "Y").read_bytes() == old
    assert _staged(disk_env) == {} and a.get("/usage").json()["used"] == SIZE
    assert a.get("/usage").json()["reserved"] == 0


def test_a_webdav_put_is_refused_when_the_old_file_moves_away_meanwhile(disk_env: DiskEnv) -> None:
    root = disk_env.alice.root
    old = _with_x(disk_env)
    with httpx.Client(auth=("alice", disk_env.alice.password), timeout=30) as dav:
        r = _streamed_while_moved(disk_env, lambda body: dav.put(
            f"{disk_env.api.url}/dav/X", content=body, headers={"Content-Length": str(SIZE)}))
    assert r.status_code == 507 and f"{SIZE} of {LIMIT} bytes used" in r.text, r.text  # WebDAV's quota answer
    assert not (root / "X").exists() and (root / "Y").read_bytes() == old
    assert _staged(disk_env) == {} and disk_env.alice.http.get("/usage").json()["used"] == SIZE


def _moved_just_before_install(monkeypatch: pytest.MonkeyPatch, disk: Disk) -> None:
    """The race at its narrowest: X moved to Y right before install's rename, after its look at X."""
    rename = os.rename

    def racing(src: str, dst: str, **kw: int) -> None:
        if str(src).endswith(".part") and (disk.root / "X").exists():
            disk.move("X", "Y")
        rename(src, dst, **kw)

    monkeypatch.setattr(os, "rename", racing)


def test_a_move_between_installs_look_and_its_rename_is_caught(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(tmp_path / "disks" / "alice", LIMIT)
    up = Uploads(disk, tmp_path / "disks" / ".staging" / "alice")
    w = up.begin("X", SIZE)
    w.write(b"o" * SIZE)
    w.commit()
    _moved_just_before_install(monkeypatch, disk)

    w = up.begin("X", SIZE, overwrite=True)  # one-shot: refused, nothing left staged
    w.write(b"n" * SIZE)
    with pytest.raises(QuotaExceeded):
        w.commit()
    assert not (disk.root / "X").exists() and (disk.root / "Y").read_bytes() == b"o" * SIZE
    assert list((up.staging / "parts").iterdir()) == [] and disk.used() == SIZE

    disk.move("Y", "X")
    s = up.create_session("X", SIZE, overwrite=True)  # resumable: refused, its bytes kept
    app = up.resume(s.id, 0)
    app.write(b"n" * SIZE)
    with pytest.raises(QuotaExceeded):
        app.close()
    assert not (disk.root / "X").exists() and (disk.root / "Y").read_bytes() == b"o" * SIZE
    assert up.get_session(s.id).offset == SIZE and disk.used() == SIZE
    disk.delete("Y")
    assert up.resume(s.id, SIZE).close() is not None  # room made: the stored bytes are installed
    assert (disk.root / "X").read_bytes() == b"n" * SIZE and disk.used() == SIZE
