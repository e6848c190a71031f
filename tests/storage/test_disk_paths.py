"""Path attacks on the network disk: each refused shape gives 400 with the reason, and nothing outside
the user's tree is read or written (checked on the file system, not only on the answer)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arkserve.storage import paths
from arkserve.storage.disk import Disk, resolve
from tests.storage.conftest import DiskEnv


@pytest.mark.parametrize(("path", "reason"), [
    ("a/../../etc/passwd", "'..' component"),
    ("..", "'..' component"),
    ("./x", "'.' component"),
    ("/etc/passwd", "absolute path"),
    ("a\x00b", "NUL"),
    ("n" * 256, "256 bytes; the limit is 255"),
    ("é" * 128, "256 bytes; the limit is 255"),
    ("a/" * 2100, "the limit is 4096"),
])
def test_split_refuses_each_shape(path: str, reason: str) -> None:
    with pytest.raises(paths.BadPath) as err:
        paths.split(path)
    assert reason in err.value.message and err.value.status == 400


def test_split_accepts_ordinary_names() -> None:
    assert paths.split("") == ()
    assert paths.split("datasets//flowers/") == ("datasets", "flowers")
    assert paths.split("n" * 255) == ("n" * 255,)
    assert paths.split("数据/..x/.hidden") == ("数据", "..x", ".hidden")


@pytest.mark.parametrize(("url", "reason"), [
    ("/files/a/%2e%2e/%2e%2e/outside.txt", "'..' component"),
    ("/files//tmp/outside.txt", "absolute path"),
    ("/files/a%00b", "NUL"),
    ("/files/" + "n" * 256, "the limit is 255"),
])
def test_api_refuses_each_shape_for_every_verb(disk_env: DiskEnv, url: str, reason: str) -> None:
    a = disk_env.alice.http
    for method in ("GET", "PUT", "DELETE"):
        r = a.request(method, url, content=b"x" if method == "PUT" else None)
        assert r.status_code == 400, (method, url, r.text)
        assert r.json()["code"] == "BadPath" and reason in r.json()["message"]
    stat_url = url.replace("/files/", "/stat/", 1)
    assert a.get(stat_url).status_code == 400
    assert a.get(url.replace("/files/", "/list/", 1)).status_code == 400
    path = url.split("/files/", 1)[1].replace("%2e", ".").replace("%00", "\x00")
    for body in ({"path": path}, ):
        assert a.post("/mkdir", json=body).status_code == 400
        assert a.post("/uploads", json={**body, "size": 1}).status_code == 400
    assert a.post("/move", json={"src": "x", "dst": path}).status_code == 400
    assert not (disk_env.api.data_dir / "disks" / "outside.txt").exists()
    assert not (disk_env.api.data_dir / "outside.txt").exists()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text("not yours")
    return out


def test_symlinks_out_of_the_tree_are_never_followed(disk_env: DiskEnv, outside: Path) -> None:
    a = disk_env.alice.http
    a.post("/mkdir", json={"path": "d"})
    root = disk_env.alice.root
    os.symlink(outside, root / "d" / "escape")  # as a replica with a read-write mount could
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(disk_env.bob.root, root / "bob")  # into another user's tree
    cases = [("GET", "/files/d/escape/secret.txt"), ("GET", "/files/link.txt"), ("GET", "/list/d/escape"),
             ("GET", "/stat/d/escape/secret.txt"), ("PUT", "/files/d/escape/planted.txt"),
             ("PUT", "/files/bob/planted.txt"), ("DELETE", "/files/d/escape/secret.txt"),
             ("GET", "/list/bob")]
    for method, url in cases:
        r = a.request(method, url, content=b"x" if method == "PUT" else None)
        assert r.status_code == 400, (method, url, r.status_code, r.text)
        assert r.json()["code"] == "BadPath" and "symbolic link" in r.json()["message"]
    for body in ({"src": "d/escape/secret.txt", "dst": "stolen.txt"}, {"src": "link.txt", "dst": "d/escape/x"}):
        assert a.post("/move", json=body).status_code == 400
    assert a.post("/mkdir", json={"path": "d/escape/new"}).status_code == 400
    assert a.post("/uploads", json={"path": "d/escape/big", "size": 5}).status_code == 400
    # nothing outside was read, written or removed
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "not yours"
    assert not disk_env.bob.root.exists() or list(disk_env.bob.root.iterdir()) == []
    # the links themselves are listed as links and can be removed (unlink, never the target)
    kinds = {e["name"]: e["type"] for e in a.get("/list").json()["entries"]}
    assert kinds == {"d": "folder", "link.txt": "link", "bob": "link"}
    assert a.delete("/files/link.txt").status_code == 204
    assert (outside / "secret.txt").exists()


def test_recursive_delete_does_not_follow_links(disk_env: DiskEnv, outside: Path) -> None:
    a = disk_env.alice.http
    a.put("/files/tree/own.txt", content=b"1")
    os.symlink(outside, disk_env.alice.root / "tree" / "escape")
    assert a.delete("/files/tree", params={"recursive": "true"}).status_code == 204
    assert not (disk_env.alice.root / "tree").exists()
    assert (outside / "secret.txt").read_text() == "not yours"


def test_resolve_for_mounts(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "disks" / "alice"
    disk = Disk(root, 10**9)
    disk.mkdir("datasets/flowers")
    assert resolve(root, "datasets/flowers") == root / "datasets" / "flowers"
    assert resolve(root, "") == root
    os.symlink(outside, root / "datasets" / "out")
    with pytest.raises(paths.BadPath, match="symbolic link"):
        resolve(root, "datasets/out")
    with pytest.raises(paths.BadPath, match="symbolic link"):
        resolve(root, "datasets/out/secret.txt")
    with pytest.raises(paths.BadPath, match="absolute"):
        resolve(root, "/datasets")
    from arkserve.errors import NotFound

    with pytest.raises(NotFound):
        resolve(root, "datasets/missing")
    assert resolve(root, "datasets/missing", must_exist=False) == root / "datasets" / "missing"


@pytest.mark.parametrize("strict", [True, False])
def test_walk_never_enters_a_link_not_even_one_swapped_in_after_listing(tmp_path: Path, outside: Path,
                                                                        strict: bool) -> None:
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "f.txt").write_text("1")
    (tree / "link").symlink_to(outside)
    (tree / "sub").mkdir()
    (tree / "sub" / "g.txt").write_text("2")
    seen: list[str] = []
    with paths.opened_root(tree) as fd:
        walked = paths.walk(fd, strict=strict)
        for _parent, parts, st in walked:
            seen.append(paths.join(parts))
            if parts == ("sub",):  # listed as a folder; now a replica swaps it for a link
                (tree / "sub").rename(tmp_path / "elsewhere")
                (tree / "sub").symlink_to(outside)
                if strict:
                    with pytest.raises(paths.LinkRefused, match='"sub" is a symbolic link'):
                        next(walked)
                    break
    assert seen == ["a", "a/f.txt", "link", "sub"]  # nothing under the link, nor under the swapped folder
