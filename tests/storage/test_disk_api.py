"""Every verb of /api/v1/disk against a live API on loopback: list, stat, mkdir, upload, download (Range),
move, delete, usage, quota, and that each user sees only their own tree."""

from __future__ import annotations

import os

from tests.storage.conftest import DiskEnv


def test_upload_list_stat_download(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    r = a.put("/files/datasets/flowers/a.txt", content=b"hello disk")
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 10 and r.json()["type"] == "file"
    assert (disk_env.alice.root / "datasets" / "flowers" / "a.txt").read_bytes() == b"hello disk"
    root = a.get("/list").json()
    assert [(e["name"], e["type"]) for e in root["entries"]] == [("datasets", "folder")]
    listing = a.get("/list/datasets/flowers").json()
    assert listing["path"] == "datasets/flowers"
    assert [(e["path"], e["size"]) for e in listing["entries"]] == [("datasets/flowers/a.txt", 10)]
    assert a.get("/stat/datasets/flowers/a.txt").json()["size"] == 10
    assert a.get("/stat/datasets").json()["type"] == "folder"
    got = a.get("/files/datasets/flowers/a.txt")
    assert got.status_code == 200 and got.content == b"hello disk"
    assert got.headers["accept-ranges"] == "bytes"
    missing = a.get("/stat/datasets/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "PathNotFound"


def test_range_downloads(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    body = bytes(range(256)) * 4096  # 1 MiB
    assert a.put("/files/r.bin", content=body).status_code == 201
    r = a.get("/files/r.bin", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == body[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(body)}"
    tail = a.get("/files/r.bin", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == body[-10:]
    rest = a.get("/files/r.bin", headers={"Range": "bytes=1048000-"})
    assert rest.status_code == 206 and rest.content == body[1048000:]
    beyond = a.get("/files/r.bin", headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416 and beyond.json()["code"] == "RangeNotSatisfiable"
    # If-Range with a stale validator: the whole (changed) file, never a mix of two versions
    stale = a.get("/files/r.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == body
    etag = rest.headers["etag"]
    fresh = a.get("/files/r.bin", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == body[:10]


def test_mkdir_move_delete(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    r = a.post("/mkdir", json={"path": "x/y/z"})
    assert r.status_code == 201 and r.json()["type"] == "folder"
    assert a.post("/mkdir", json={"path": "x/y/z"}).status_code == 201  # idempotent
    assert a.put("/files/x/y/z/f.txt", content=b"1").status_code == 201
    assert a.post("/mkdir", json={"path": "x/y/z/f.txt"}).json()["code"] == "PathExists"
    moved = a.post("/move", json={"src": "x/y/z/f.txt", "dst": "x/g.txt"})
    assert moved.status_code == 200 and moved.json()["path"] == "x/g.txt"
    assert not (disk_env.alice.root / "x/y/z/f.txt").exists()
    assert (disk_env.alice.root / "x/g.txt").read_bytes() == b"1"
    assert a.put("/files/x/h.txt", content=b"2").status_code == 201
    clash = a.post("/move", json={"src": "x/h.txt", "dst": "x/g.txt"})
    assert clash.status_code == 409 and clash.json()["code"] == "PathExists"
    assert a.post("/move", json={"src": "x/h.txt", "dst": "x/g.txt", "overwrite": True}).status_code == 200
    assert (disk_env.alice.root / "x/g.txt").read_bytes() == b"2"
    into_itself = a.post("/move", json={"src": "x", "dst": "x/y/inner"})
    assert into_itself.status_code == 400 and into_itself.json()["code"] == "BadPath"
    renamed = a.post("/move", json={"src": "x/y", "dst": "renamed"})
    assert renamed.status_code == 200 and (disk_env.alice.root / "renamed/z").is_dir()
    not_empty = a.delete("/files/x")
    assert not_empty.status_code == 409 and not_empty.json()["code"] == "FolderNotEmpty"
    assert a.delete("/files/x/g.txt").status_code == 204
    assert a.delete("/files/x").status_code == 204
    assert a.delete("/files/renamed", params={"recursive": "true"}).status_code == 204
    assert a.get("/list").json()["entries"] == []
    assert a.delete("/files/renamed").status_code == 404
    assert a.delete("/files/").json()["code"] == "BadPath"  # the root itself


def test_a_folder_moved_onto_a_file_is_a_conflict_and_both_stay(disk_env: DiskEnv) -> None:
    a, root = disk_env.alice.http, disk_env.alice.root
    assert a.put("/files/f.txt", content=b"hello").status_code == 201
    assert a.put("/files/d/x", content=b"xx").status_code == 201
    r = a.post("/move", json={"src": "d", "dst": "f.txt", "overwrite": True})
    assert r.status_code == 409 and r.json()["code"] == "PathExists", r.text
    assert "is not a folder; a folder cannot replace it" in r.json()["message"]
    assert (root / "f.txt").read_bytes() == b"hello" and (root / "d" / "x").read_bytes() == b"xx"
    onto_folder = a.post("/move", json={"src": "f.txt", "dst": "d", "overwrite": True})
    assert onto_folder.status_code == 409 and onto_folder.json()["code"] == "PathExists"
    under_a_file = a.post("/move", json={"src": "f.txt", "dst": "d/x/y"})
    assert under_a_file.status_code == 409 and under_a_file.json()["code"] == "NotAFolder"


def test_a_failed_move_makes_no_folder(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    r = a.post("/move", json={"src": "nope", "dst": "newparent/deep/x"})
    assert r.status_code == 404 and r.json()["code"] == "PathNotFound"
    assert a.get("/list").json()["entries"] == []
    assert not (disk_env.alice.root / "newparent").exists()
    assert a.put("/files/f.txt", content=b"1").status_code == 201
    moved = a.post("/move", json={"src": "f.txt", "dst": "made/on/the/way.txt"})  # a found source: made then
    assert moved.status_code == 200 and (disk_env.alice.root / "made/on/the/way.txt").read_bytes() == b"1"


def test_a_name_that_is_not_utf8_is_listed_escaped_and_refused_cleanly(disk_env: DiskEnv) -> None:
    a, data = disk_env.alice.http, os.fsencode(disk_env.alice.root / "data")
    assert a.put("/files/data/ok.txt", content=b"ok").status_code == 201
    os.close(os.open(data + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))  # made by a replica (:rw)
    os.mkdir(data + b"/dir\xfe")
    listing = a.get("/list/data")
    assert listing.status_code == 200, listing.text
    assert [(e["path"], e["type"]) for e in listing.json()["entries"]] == [
        ("data/dir\\xfe", "folder"), ("data/bad\\xff.txt", "file"), ("data/ok.txt", "file")]
    for method, url in (("GET", "/stat/"), ("GET", "/files/"), ("DELETE", "/files/"), ("GET", "/list/")):
        for name in ("bad%5Cxff.txt", "bad%FF.txt", "dir%5Cxfe", "dir%FE"):
            r = a.request(method, url + "data/" + name)
            assert r.status_code == 404 and r.json()["code"] == "PathNotFound", (method, url, name, r.text)
    assert a.delete("/files/data", params={"recursive": "true"}).status_code == 204  # the way to remove them
    assert a.get("/list").json()["entries"] == []


def test_usage_and_admin_quota(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    default = a.get("/usage").json()
    assert default == {"username": "alice", "used": 0, "reserved": 0, "limit": 100 * 1024**3}
    a.put("/files/f", content=b"x" * 1234)
    assert a.get("/usage").json()["used"] == 1234
    disk_env.set_quota("alice", 5000)
    assert a.get("/usage").json()["limit"] == 5000
    # only an admin sets quotas or reads another user's usage
    assert a.put("/quota/alice", json={"limit_bytes": 10**15}).status_code == 403
    assert a.get("/usage", params={"user": "bob"}).status_code == 403
    with disk_env.api.client() as admin:
        assert admin.get("/disk/usage", user="alice")["used"] == 1234
        admin.request("PUT", "/disk/quota/alice", json={"limit_bytes": None})
    assert a.get("/usage").json()["limit"] == 100 * 1024**3


def test_users_see_only_their_own_tree(disk_env: DiskEnv) -> None:
    a, b = disk_env.alice.http, disk_env.bob.http
    assert a.put("/files/secret.txt", content=b"alice's").status_code == 201
    assert b.get("/list").json()["entries"] == []
    assert b.get("/files/secret.txt").status_code == 404
    assert b.put("/files/secret.txt", content=b"bob's").status_code == 201
    assert (disk_env.alice.root / "secret.txt").read_bytes() == b"alice's"
    assert (disk_env.bob.root / "secret.txt").read_bytes() == b"bob's"


def test_openapi_documents_the_disk(disk_env: DiskEnv) -> None:
    import httpx

    doc = httpx.get(f"{disk_env.api.url}/api/v1/openapi.json").json()
    paths = doc["paths"]
    for path, method in [("/api/v1/disk/list", "get"), ("/api/v1/disk/list/{path}", "get"),
                         ("/api/v1/disk/stat/{path}", "get"), ("/api/v1/disk/mkdir", "post"),
                         ("/api/v1/disk/files/{path}", "put"), ("/api/v1/disk/files/{path}", "get"),
                         ("/api/v1/disk/files/{path}", "delete"), ("/api/v1/disk/move", "post"),
                         ("/api/v1/disk/usage", "get"), ("/api/v1/disk/uploads", "post"),
                         ("/api/v1/disk/uploads/{upload_id}", "patch"), ("/api/v1/disk/quota/{username}", "put")]:
        assert method in paths[path], (path, method)
    assert "application/octet-stream" in paths["/api/v1/disk/files/{path}"]["put"]["requestBody"]["content"]


def test_nothing_left_in_staging_after_uploads(disk_env: DiskEnv) -> None:
    a = disk_env.alice.http
    for i in range(3):
        assert a.put(f"/files/f{i}", content=os.urandom(1000)).status_code == 201
    staging = disk_env.api.data_dir / "disks" / ".staging" / "alice"
    assert list((staging / "parts").iterdir()) == []
    assert list((staging / "claims").iterdir()) == []
