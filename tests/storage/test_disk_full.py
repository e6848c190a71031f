"""A full platform disk and the free-space floor (``disk.min_free_mib``), through the live API on loopback.

The full disk is real: a small tmpfs mounted over ``<data_dir>/disks`` (or ``<data_dir>/models``), filled by the
upload itself, so the kernel answers ``ENOSPC``. Every write path (one-shot ``PUT`` spliced or streamed, a
resumable session's ``PATCH``, WebDAV ``PUT``, model publishing from an archive or a disk folder) must answer
507 ``InsufficientStorage`` as the API's JSON error, keep nothing under the target name, give the staging
bytes back and charge nothing to the user's quota. The floor refuses the same uploads before a byte is stored.
Mounting needs root; elsewhere these tests are skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkserve.storage.space import free_bytes
from tests.api.conftest import LiveApi, running_api
from tests.storage.archives import tar_of
from tests.storage.conftest import DiskUser, _user

MIB = 1 << 20
TMPFS_MIB = 8


@contextmanager
def tmpfs(path: Path, mib: int = TMPFS_MIB) -> Iterator[Path]:
    """A ``mib`` MiB tmpfs mounted at ``path`` (made if missing), unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a real full file system) needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


@contextmanager
def api_with_small(tmp_path: Path, under: str, **settings: Any) -> Iterator[tuple[LiveApi, DiskUser, Path]]:
    """A live API whose ``<data_dir>/<under>`` is a small tmpfs, and the user alice."""
    with tmpfs(tmp_path / "data" / under) as small, running_api(tmp_path, **settings) as api:
        alice = _user(api, "alice")
        try:
            yield api, alice, small
        finally:
            alice.http.close()


def _unsized(data: bytes, step: int = 256 * 1024) -> Iterator[bytes]:
    """``data`` as a body of unknown size (sent chunked, no ``Content-Length``)."""
    for i in range(0, len(data), step):
        yield data[i:i + step]


def _disk_full(r: httpx.Response) -> dict[str, Any]:
    """The 507 answer, checked: the API's JSON error with the request's id."""
    assert r.status_code == 507, (r.status_code, r.text[:300])
    body: dict[str, Any] = r.json()
    assert body["code"] == "InsufficientStorage" and "disk is full" in body["message"], body
    assert body["request_id"] and body["request_id"] == r.headers["x-request-id"]
    return body


def _staged(api: LiveApi, user: str = "alice") -> list[str]:
    parts = api.data_dir / "disks" / ".staging" / user / "parts"
    return sorted(p.name for p in parts.iterdir()) if parts.exists() else []


def _nothing_kept(api: LiveApi, alice: DiskUser, name: str) -> None:
    assert not (alice.root / name).exists()
    assert _staged(api) == []
    usage = alice.http.get("/usage").json()
    assert (usage["used"], usage["reserved"]) == (0, 0), usage


def test_one_shot_uploads_on_a_full_disk_answer_507_and_give_the_room_back(tmp_path: Path) -> None:
    with api_with_small(tmp_path, "disks", **{"disk.min_free_mib": 0}) as (api, alice, small):
        data = os.urandom(12 * MIB)  # more than the whole file system holds
        _disk_full(alice.http.put("/files/big.bin", content=data))  # Content-Length: spliced into the file
        _nothing_kept(api, alice, "big.bin")
        assert free_bytes(small) > (TMPFS_MIB - 1) * MIB  # the staging file is gone, its room with it
        _disk_full(alice.http.put("/files/streamed.bin", content=_unsized(data)))  # written chunk by chunk
        _nothing_kept(api, alice, "streamed.bin")
        assert free_bytes(small) > (TMPFS_MIB - 1) * MIB
        ok = alice.http.put("/files/small.bin", content=b"s" * 1000)  # the disk serves again at once
        assert ok.status_code == 201 and (alice.root / "small.bin").read_bytes() == b"s" * 1000


def test_a_session_patch_on_a_full_disk_gives_back_what_it_stored(tmp_path: Path) -> None:
    with api_with_small(tmp_path, "disks", **{"disk.min_free_mib": 0}) as (api, alice, small):
        size = 12 * MIB
        data = os.urandom(size)
        session = alice.http.post("/uploads", json={"path": "s.bin", "size": size}).json()
        sid = session["id"]
        first = alice.http.patch(f"/uploads/{sid}", params={"offset": 0}, content=data[:MIB])
        assert first.status_code == 200 and first.json()["offset"] == MIB
        _disk_full(alice.http.patch(f"/uploads/{sid}", params={"offset": MIB}, content=data[MIB:]))  # spliced
        assert alice.http.get(f"/uploads/{sid}").json()["offset"] == MIB  # resumes where this PATCH began
        _disk_full(alice.http.patch(f"/uploads/{sid}", params={"offset": MIB}, content=_unsized(data[MIB:])))
        assert alice.http.get(f"/uploads/{sid}").json()["offset"] == MIB
        staged = api.data_dir / "disks" / ".staging" / "alice" / "parts" / f"{sid}.part"
        assert staged.stat().st_size == MIB  # only the bytes of the PATCH that succeeded
        assert free_bytes(small) > (TMPFS_MIB - 2) * MIB
        assert not (alice.root / "s.bin").exists()
        assert alice.http.get("/usage").json()["used"] == 0
        assert alice.http.delete(f"/uploads/{sid}").status_code == 204
        _nothing_kept(api, alice, "s.bin")


def test_a_webdav_put_on_a_full_disk_is_507_and_keeps_nothing(tmp_path: Path) -> None:
    with api_with_small(tmp_path, "disks", **{"disk.min_free_mib": 0}) as (api, alice, small):
        r = httpx.put(f"{api.url}/dav/big.bin", content=os.urandom(12 * MIB), auth=(alice.name, alice.password),
                      timeout=30)
        assert r.status_code == 507 and "disk is full" in r.text, (r.status_code, r.text[:300])
        _nothing_kept(api, alice, "big.bin")
        assert free_bytes(small) > (TMPFS_MIB - 1) * MIB


def test_publishing_a_model_on_a_full_disk_is_507_and_keeps_nothing(tmp_path: Path) -> None:
    with api_with_small(tmp_path, "models", **{"disk.min_free_mib": 0}) as (api, alice, small):
        url, auth = f"{api.url}/api/v1/models", alice.http.auth
        for size in (12 * MIB, 5 * MIB):  # the spool does not fit; the spool fits but its files do not
            r = httpx.put(f"{url}/m/versions/1/archive", content=tar_of({"w.bin": os.urandom(size)}),
                          headers={"content-type": "application/x-tar"}, auth=auth, timeout=30)
            _disk_full(r)
            assert not [p for p in small.rglob("*") if p.is_file()]  # no spool, no blob, no temporary file
        (alice.root / "weights").mkdir(parents=True)
        (alice.root / "weights" / "w.bin").write_bytes(os.urandom(12 * MIB))  # the disk is not on the tmpfs
        _disk_full(httpx.post(f"{url}/d/versions/1", json={"disk_path": "weights"}, auth=auth, timeout=30))
        assert not [p for p in small.rglob("*") if p.is_file()]
        assert httpx.get(f"{url}/m", auth=auth).status_code == 404  # nothing recorded
        assert free_bytes(small) > (TMPFS_MIB - 1) * MIB


def test_the_free_space_floor_refuses_before_a_byte_is_stored(tmp_path: Path) -> None:
    """On a real 8 MiB file system with a 4 MiB floor: what fits above the floor is stored, what would pass it is
    refused before a byte of it is written (and a session is checked again when it continues)."""
    with api_with_small(tmp_path, "disks", **{"disk.min_free_mib": 4}) as (api, alice, small):
        a = alice.http
        assert a.put("/files/three.bin", content=b"3" * 3 * MIB).status_code == 201  # ~5 MiB left: fits
        body = _disk_full(a.put("/files/two.bin", content=b"2" * 2 * MIB))
        assert body["min_free_bytes"] == 4 * MIB and body["needed"] == 2 * MIB
        assert not (alice.root / "two.bin").exists() and _staged(api) == []
        _disk_full(a.put("/files/two.bin", content=_unsized(b"2" * 2 * MIB)))  # unknown size: refused at its step
        _disk_full(a.post("/uploads", json={"path": "two.bin", "size": 2 * MIB}))
        assert not (alice.root / "two.bin").exists() and _staged(api) == []
        usage = a.get("/usage").json()
        assert (usage["used"], usage["reserved"]) == (3 * MIB, 0), usage
        dav = httpx.put(f"{api.url}/dav/two.bin", content=b"2" * 2 * MIB, auth=(alice.name, alice.password))
        assert dav.status_code == 507 and "disk is full" in dav.text
        assert not (alice.root / "two.bin").exists() and _staged(api) == []
        # a session opened while there was room is checked again when it continues
        sid = a.post("/uploads", json={"path": "later.bin", "size": 512 * 1024}).json()["id"]
        filler = small / "filler"  # someone else takes the room meanwhile (a replica's read-write mount)
        filler.write_bytes(b"f" * (free_bytes(small) - 4 * MIB - 100 * 1024))
        _disk_full(a.patch(f"/uploads/{sid}", params={"offset": 0}, content=b"l" * 512 * 1024))
        assert a.get(f"/uploads/{sid}").json()["offset"] == 0
        filler.unlink()
        done = a.patch(f"/uploads/{sid}", params={"offset": 0}, content=b"l" * 512 * 1024)
        assert done.status_code == 200 and done.json()["complete"], done.text
        assert (alice.root / "later.bin").stat().st_size == 512 * 1024


def test_the_floor_guards_model_publishing(tmp_path: Path) -> None:
    above = free_bytes(tmp_path) // MIB + 1024  # more than this file system has free: everything is refused
    with running_api(tmp_path, **{"disk.min_free_mib": above}) as api:
        alice = _user(api, "alice")
        try:
            url, auth = f"{api.url}/api/v1/models", alice.http.auth
            tar = tar_of({"w.bin": b"w" * 1000})
            _disk_full(httpx.put(f"{url}/m/versions/1/archive", content=tar,
                                 headers={"content-type": "application/x-tar"}, auth=auth))
            _disk_full(httpx.put(f"{url}/m/versions/1/archive", content=_unsized(tar),
                                 headers={"content-type": "application/x-tar"}, auth=auth))
            (alice.root / "weights").mkdir(parents=True)
            (alice.root / "weights" / "w.bin").write_bytes(b"w" * 1000)
            _disk_full(httpx.post(f"{url}/d/versions/1", json={"disk_path": "weights"}, auth=auth))
            models = api.data_dir / "models"
            assert not models.exists() or not [p for p in models.rglob("*") if p.is_file()]
            _disk_full(alice.http.put("/files/f.bin", content=b"x"))
            assert not (alice.root / "f.bin").exists()
        finally:
            alice.http.close()
