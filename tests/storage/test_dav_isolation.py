"""WebDAV locks and dead properties between users, and request bodies that must not be kept, on a live API over
real HTTP: one user's LOCK never blocks another user's writes; one user's PROPPATCH never shows up, changes or
disappears on another user's file of the same name (and follows its own file on MOVE); both are bounded (body
size, locks and properties per user); a PUT the client cuts off mid-body (chunked, raw socket) never replaces or
creates the file; and LOCK of a name that does not exist creates the empty file (or takes no lock at all)."""

from __future__ import annotations

import base64
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.storage.conftest import DiskEnv, DiskUser

LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope>'
            '<D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>')
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


def _set_prop(name: str, value: str) -> str:
    return (f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:test"><D:set><D:prop>'
            f'<Z:{name}>{value}</Z:{name}></D:prop></D:set></D:propertyupdate>')


_clients: dict[tuple[str, str], httpx.Client] = {}


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.popitem()[1].close()


def _dav(env: DiskEnv, user: DiskUser, method: str, path: str, body: str | bytes = b"",
         headers: dict[str, str] | None = None) -> httpx.Response:
    key = (env.api.url, user.name)
    if key not in _clients:
        _clients[key] = httpx.Client(base_url=f"{env.api.url}/dav/", auth=(user.name, user.password), timeout=30)
    return _clients[key].request(method, path, content=body, headers=headers)


def _lock(env: DiskEnv, user: DiskUser, path: str, *, scope: str = "exclusive", owner: str = "tests",
          depth: str = "infinity") -> httpx.Response:
    return _dav(env, user, "LOCK", path, LOCKINFO.format(scope=scope, owner=owner),
                {"Depth": depth, "Timeout": "Infinite"})


def _token(answer: httpx.Response) -> str:
    return answer.headers["lock-token"].strip("<>")


def _wait(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_lock_holds_only_on_its_owners_disk(disk_env: DiskEnv) -> None:
    alice, bob = disk_env.alice, disk_env.bob
    for user in (alice, bob):
        assert _dav(disk_env, user, "PUT", "x.txt", f"{user.name}'s".encode()).status_code == 201
    locked = _lock(disk_env, alice, "", owner="alice-lock-owner")  # LOCK / for 28 days
    assert locked.status_code == 200, locked.text
    token = _token(locked)
    # bob's own disk is not under alice's lock
    assert _dav(disk_env, bob, "PUT", "y.txt", b"bob").status_code == 201
    assert _dav(disk_env, bob, "MKCOL", "newdir").status_code == 201
    assert _dav(disk_env, bob, "DELETE", "x.txt").status_code == 204
    found = _dav(disk_env, bob, "PROPFIND", "", ALLPROP, {"Depth": "0"})
    assert found.status_code == 207 and "alice-lock-owner" not in found.text and "activelock" not in found.text
    own = _lock(disk_env, bob, "", owner="bob-lock-owner")  # and bob can lock his own root
    assert own.status_code == 200, own.text
    assert _dav(disk_env, bob, "UNLOCK", "", headers={"Lock-Token": f"<{_token(own)}>"}).status_code == 204
    # alice's lock still holds on alice's disk: without its token she cannot write, with it she can
    assert _dav(disk_env, alice, "PUT", "y.txt", b"alice").status_code == 423
    assert _dav(disk_env, alice, "PUT", "y.txt", b"alice", {"If": f"(<{token}>)"}).status_code == 201
    assert _dav(disk_env, alice, "UNLOCK", "", headers={"Lock-Token": f"<{token}>"}).status_code == 204
    assert (alice.root / "y.txt").read_bytes() == b"alice" and (bob.root / "y.txt").read_bytes() == b"bob"


def test_dead_properties_stay_with_their_owners_file(disk_env: DiskEnv) -> None:
    alice, bob = disk_env.alice, disk_env.bob
    for user in (alice, bob):
        assert _dav(disk_env, user, "PUT", "x.txt", b"x").status_code == 201

    def note(user: DiskUser, path: str = "x.txt") -> str | None:
        found = _dav(disk_env, user, "PROPFIND", path, ALLPROP, {"Depth": "0"})
        assert found.status_code == 207, found.text
        match = re.search(r"<(?:\w+:)?note[^>]*>([^<]*)<", found.text)
        return match.group(1) if match else None

    assert _dav(disk_env, alice, "PROPPATCH", "x.txt", _set_prop("note", "alice-private-note")).status_code == 207
    assert note(alice) == "alice-private-note"
    assert note(bob) is None  # not read across users
    assert _dav(disk_env, bob, "PROPPATCH", "x.txt", _set_prop("note", "set-by-bob")).status_code == 207
    assert note(bob) == "set-by-bob" and note(alice) == "alice-private-note"  # not written across users
    assert _dav(disk_env, bob, "DELETE", "x.txt").status_code == 204
    assert note(alice) == "alice-private-note"  # not deleted across users
    moved = _dav(disk_env, alice, "MOVE", "x.txt", headers={"Destination": f"{disk_env.api.url}/dav/moved.txt"})
    assert moved.status_code == 201 and note(alice, "moved.txt") == "alice-private-note"  # it follows the file


def test_bodies_locks_and_properties_are_bounded(disk_env: DiskEnv) -> None:
    alice, bob = disk_env.alice, disk_env.bob
    assert _dav(disk_env, alice, "PUT", "x.txt", b"x").status_code == 201
    # a body over 64 KiB is refused before it is read, with the API's JSON error
    for method, body in [("PROPPATCH", _set_prop("big", "v" * (65 << 10))),
                         ("LOCK", LOCKINFO.format(scope="exclusive", owner="o" * (65 << 10)))]:
        refused = _dav(disk_env, alice, method, "x.txt", body)
        assert refused.status_code == 413, (method, refused.status_code, refused.text[:200])
        error = refused.json()
        assert error["code"] == "PayloadTooLarge" and "65536" in error["message"], error
        assert error["request_id"] == refused.headers["x-request-id"]
    assert _dav(disk_env, alice, "PUT", "x.txt", b"not locked").status_code == 204  # that LOCK took nothing
    # dead properties: 1 MiB per user in all; past it, 507 for the property (in PROPPATCH's 207)
    value = "v" * 65_000
    answers = [_dav(disk_env, alice, "PROPPATCH", "x.txt", _set_prop(f"p{i}", value)) for i in range(17)]
    assert all(a.status_code == 207 and "HTTP/1.1 200" in a.text for a in answers[:16]), answers[:16]
    assert "HTTP/1.1 507" in answers[16].text and "per user" in answers[16].text, answers[16].text
    assert _dav(disk_env, bob, "PUT", "x.txt", b"x").status_code == 201  # another user's bound is their own
    assert "HTTP/1.1 200" in _dav(disk_env, bob, "PROPPATCH", "x.txt", _set_prop("p", value)).text
    # the properties of a file deleted by the API (not WebDAV) make room again
    alice.http.delete("/files/x.txt").raise_for_status()
    assert _dav(disk_env, alice, "PUT", "z.txt", b"z").status_code == 201
    assert "HTTP/1.1 200" in _dav(disk_env, alice, "PROPPATCH", "z.txt", _set_prop("p", value)).text
    # locks: 100 live ones per user (shared locks on one name could otherwise pile up without end)
    for i in range(100):
        assert _lock(disk_env, alice, "z.txt", scope="shared", depth="0").status_code == 200, i
    over = _lock(disk_env, alice, "z.txt", scope="shared", depth="0")
    assert over.status_code == 507 and "100 WebDAV locks" in over.text, (over.status_code, over.text[:300])
    assert _lock(disk_env, bob, "x.txt", scope="shared", depth="0").status_code == 200


def _parts(env: DiskEnv, user: str = "alice") -> list[Path]:
    return list((env.api.data_dir / "disks/.staging" / user / "parts").iterdir())


def _cut_off_put(env: DiskEnv, path: str) -> None:
    """A chunked PUT whose client sends 512 KiB, waits until the server is writing them, and goes away without
    the body's last chunk (what a2wsgi reads as the body's end)."""
    host, port = env.api.url.removeprefix("http://").split(":")
    auth = base64.b64encode(f"alice:{env.alice.password}".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"PUT /dav/{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
                  f"Transfer-Encoding: chunked\r\n\r\n".encode())
        piece = os.urandom(64 << 10)
        for _ in range(8):
            s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        _wait("the server to stage the body", lambda: any(p.stat().st_size > 0 for p in _parts(env)))
    _wait("the upload to end", lambda: _parts(env) == [])


def test_a_cut_off_put_replaces_and_creates_nothing(disk_env: DiskEnv) -> None:
    alice = disk_env.alice
    good = os.urandom(2 << 20)
    assert _dav(disk_env, alice, "PUT", "good.bin", good).status_code == 201
    _cut_off_put(disk_env, "good.bin")
    assert (alice.root / "good.bin").read_bytes() == good  # the intact file stays
    _cut_off_put(disk_env, "new.bin")
    assert not (alice.root / "new.bin").exists()
    # a chunked PUT that ends properly is still installed
    done = httpx.put(f"{disk_env.api.url}/dav/new.bin", content=iter([b"a" * 1000, b"b" * 1000]),
                     auth=(alice.name, alice.password))
    assert done.status_code == 201 and (alice.root / "new.bin").read_bytes() == b"a" * 1000 + b"b" * 1000


def test_lock_of_a_missing_name_creates_the_empty_file_or_takes_no_lock(disk_env: DiskEnv) -> None:
    alice, bob = disk_env.alice, disk_env.bob
    made = _lock(disk_env, bob, "new.txt", depth="0")
    assert made.status_code == 201, made.text  # RFC 4918 9.10.4: an empty file, locked
    assert (bob.root / "new.txt").read_bytes() == b"" and "new.txt" in made.text
    token = _token(made)
    assert _dav(disk_env, bob, "PUT", "new.txt", b"no token").status_code == 423
    assert _dav(disk_env, bob, "PUT", "new.txt", b"saved", {"If": f"(<{token}>)"}).status_code == 204
    assert _dav(disk_env, bob, "UNLOCK", "new.txt", headers={"Lock-Token": f"<{token}>"}).status_code == 204
    assert (bob.root / "new.txt").read_bytes() == b"saved"
    assert not (alice.root / "new.txt").exists()
    # refused before any lock: a missing folder, a folder under another of the user's locks, a full quota
    assert _lock(disk_env, alice, "no-such-dir/f.txt", depth="0").status_code == 409
    assert _dav(disk_env, alice, "MKCOL", "dir").status_code == 201
    held = _lock(disk_env, alice, "dir")
    assert held.status_code == 200
    assert _lock(disk_env, alice, "dir/f.txt", depth="0").status_code == 423  # no token for dir's lock
    assert not (alice.root / "dir" / "f.txt").exists()
    assert _dav(disk_env, alice, "UNLOCK", "dir", headers={"Lock-Token": f"<{_token(held)}>"}).status_code == 204
    assert _dav(disk_env, alice, "PUT", "fill.bin", b"x" * 100).status_code == 201
    disk_env.set_quota("alice", 50)
    assert _lock(disk_env, alice, "full.txt", depth="0").status_code == 507
    assert not (alice.root / "full.txt").exists()
    disk_env.set_quota("alice", None)
    for name in ("no-such-dir/f.txt", "dir/f.txt", "full.txt"):  # no lock was left behind on any of them
        if "/" in name:
            _dav(disk_env, alice, "MKCOL", name.split("/")[0])
        assert _dav(disk_env, alice, "PUT", name, b"mine").status_code == 201, name
