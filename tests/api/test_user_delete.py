"""Deleting a user through REST: refused (409) while they own services, models or images, and then nothing is
deleted; once it goes through, nothing of the old account passes to a new one of the same name — not their
network disk, not their uploads in flight, not their user id (the async webhook secret is derived from it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.registry import config as registry_config
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from arkserve.storage.disk import user_root
from arkserve.storage.removal import trash_dir
from arkserve.storage.uploads import staging_dir
from arkserve.store import services as service_store
from arkserve.store.db import Store, open_store
from tests.api.conftest import LiveApi

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 0}
BINARY = {"content-type": "application/octet-stream"}


@pytest.fixture
def store(live_api: LiveApi) -> Iterator[Store]:
    store = open_store(live_api.database_url or f"sqlite:///{live_api.data_dir}/arkserve.db", migrate_schema=False)
    yield store
    store.dispose()


def _user(live_api: LiveApi, name: str, password: str) -> tuple[int, httpx.Client]:
    with live_api.client() as admin:
        made = admin.post("/users", {"username": name, "password": password})
        key = admin.post("/keys", {"username": name})
    return made["id"], httpx.Client(base_url=live_api.url + "/api/v1", timeout=30,
                                    auth=ArkAuth(key["access_key"], key["secret_key"]))


def _delete_refused(live_api: LiveApi, name: str) -> ApiError:
    with live_api.client() as admin, pytest.raises(ApiError) as refused:
        admin.delete(f"/users/{name}")
    assert (refused.value.status, refused.value.code) == (409, "UserOwnsResources"), refused.value.message
    return refused.value


def test_a_user_who_owns_things_is_not_deleted_until_they_are_gone(live_api: LiveApi, store: Store) -> None:
    _, dave = _user(live_api, "dave", "dave-password-123")
    with dave:
        assert dave.put("/disk/files/weights/w.bin", content=b"weights", headers=BINARY).status_code == 201
        assert dave.post("/models/dave-model/versions/1", json={"disk_path": "weights"}).status_code == 201
        assert dave.post("/services", json={**SPEC, "name": "dave-svc"}).status_code == 201
        # an image dave pushed, as the registry stores it (tests/registry push real ones; this suite runs none)
        tag = (registry_config.storage_root(live_api.data_dir)
               / "docker/registry/v2/repositories/dave/app/_manifests/tags/v1/current/link")
        tag.parent.mkdir(parents=True)
        tag.write_text("sha256:" + "0" * 64)

        refused = _delete_refused(live_api, "dave")
        for named in ("services dave-svc", "models dave-model", "images dave/app", "delete them first",
                      "arkserve service delete", "arkserve model delete", "arkserve image delete"):
            assert named in refused.message, refused.message
        raw = httpx.delete(f"{live_api.url}/api/v1/users/dave", auth=ArkAuth(live_api.admin_ak, live_api.admin_sk))
        assert raw.status_code == 409 and raw.json()["request_id"]
        assert raw.json()["owned"] == {"services": 1, "models": 1, "images": 1}
        env = {"ARKSERVE_ENDPOINT": live_api.url, "ARKSERVE_ACCESS_KEY": live_api.admin_ak,
               "ARKSERVE_SECRET_KEY": live_api.admin_sk, "ARKSERVE_CLI_CONFIG": "/nonexistent/profiles.yaml"}
        out = CliRunner().invoke(cli, ["user", "delete", "dave", "--yes"], env=env)
        assert out.exit_code == 1 and "[UserOwnsResources]" in out.output, out.output
        assert "services dave-svc" in out.output and "delete them first" in out.output
        # nothing was deleted: the account, its key, its disk
        with live_api.client() as admin:
            assert admin.get("/users/dave")["username"] == "dave"
        assert dave.get("/disk/files/weights/w.bin").content == b"weights"

        assert dave.delete("/models/dave-model").status_code == 204
        shutil.rmtree(tag.parents[3])  # what `arkserve image delete dave/app` does to the registry's storage
        assert dave.delete("/services/dave-svc").status_code == 202
        refused = _delete_refused(live_api, "dave")  # a service being deleted is still there
        assert "services dave-svc" in refused.message and "models" not in refused.message
        assert "images" not in refused.message
        with store.begin() as conn:  # what the reconciler does once the replicas are gone (worker._status)
            service_store.remove(conn, service_store.get(conn, "dave-svc").id)
    with live_api.client() as admin:
        admin.delete("/users/dave")
        with pytest.raises(ApiError) as gone:
            admin.get("/users/dave")
        assert gone.value.code == "UserNotFound"


def test_a_new_account_of_a_deleted_name_starts_with_an_empty_disk(live_api: LiveApi) -> None:
    _, erin = _user(live_api, "erin", "erin-password-123")
    with erin:
        assert erin.put("/disk/files/private/notes.txt", content=b"erin's notes", headers=BINARY).status_code == 201
        resumable = erin.post("/disk/uploads", json={"path": "big.bin", "size": 100})
        assert resumable.status_code == 201
    old_root, old_staging = user_root(live_api.data_dir, "erin"), staging_dir(live_api.data_dir, "erin")
    assert old_root.is_dir() and old_staging.is_dir()
    stale = trash_dir(live_api.data_dir) / "erin.disk.left-by-a-crash"
    stale.mkdir(parents=True)  # what an interrupted removal leaves: the next one clears it
    (stale / "f").write_bytes(b"x")
    with live_api.client() as admin:
        admin.delete("/users/erin")
    assert not old_root.exists() and not old_staging.exists()
    assert list(trash_dir(live_api.data_dir).iterdir()) == []

    _, erin2 = _user(live_api, "erin", "another-person-456")
    with erin2:
        assert erin2.get("/disk/list").json()["entries"] == []
        assert erin2.get("/disk/files/private/notes.txt").status_code == 404
        assert erin2.get("/disk/uploads").json() == []
        assert erin2.get(f"/disk/uploads/{resumable.json()['id']}").status_code == 404
        assert erin2.get("/disk/usage").json()["used"] == 0


def test_a_user_id_is_never_handed_out_twice(live_api: LiveApi) -> None:
    fred_id, fred = _user(live_api, "fred", "fred-password-123")
    with fred:
        fred_secret = fred.get("/webhook-secret").json()["secret"]
    with live_api.client() as admin:
        admin.delete("/users/fred")  # the highest id: SQLite alone would give it to the next row
    gina_id, gina = _user(live_api, "gina", "gina-password-123")
    with gina:
        assert gina_id > fred_id
        assert gina.get("/webhook-secret").json()["secret"] != fred_secret
    with live_api.client() as admin:
        admin.delete("/users/gina")
        with pytest.raises(ApiError):  # a refused creation uses up no id either way, and breaks nothing
            admin.post("/users", {"username": "admin", "password": "whatever-123456"})
    hank_id, hank = _user(live_api, "hank", "hank-password-123")
    hank.close()
    assert hank_id > gina_id


def test_user_ids_survive_a_restart_of_the_store(tmp_path: Path) -> None:
    """The high-water mark is in the database, not in a process: a second store on the same file continues it."""
    from sqlalchemy import delete

    from arkserve.store import users as user_store
    from arkserve.store.tables import versions

    url = f"sqlite:///{tmp_path}/arkserve.db"
    first = open_store(url)
    with first.begin() as conn:
        ids = [user_store.create(conn, f"u{i}", "x", "user").id for i in range(3)]
        user_store.remove(conn, ids[-1])
    first.dispose()
    second = open_store(url)
    with second.begin() as conn:
        assert user_store.create(conn, "u9", "x", "user").id == ids[-1] + 1
        # a store from before the counter: it starts from the highest id in the table
        conn.execute(delete(versions).where(versions.c.name == user_store.ID_COUNTER))
        assert user_store.create(conn, "u10", "x", "user").id == ids[-1] + 2
    second.dispose()


def test_a_disk_that_cannot_be_moved_away_is_reported_not_hidden(live_api: LiveApi) -> None:
    _, ivy = _user(live_api, "ivy", "ivy-password-123")
    with ivy:
        assert ivy.put("/disk/files/a.txt", content=b"a", headers=BINARY).status_code == 201
    trash_dir(live_api.data_dir).write_bytes(b"")  # a file where the trash folder goes: the move fails
    with live_api.client() as admin, pytest.raises(ApiError) as failed:
        admin.delete("/users/ivy")
    assert (failed.value.status, failed.value.code) == (500, "DiskNotRemoved")
    assert str(user_root(live_api.data_dir, "ivy")) in failed.value.message and "by hand" in failed.value.message
    with live_api.client() as admin, pytest.raises(ApiError) as gone:  # the deletion itself stands
        admin.get("/users/ivy")
    assert gone.value.code == "UserNotFound"
