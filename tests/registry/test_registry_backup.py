"""The registry's part of a backup (``arkserve.registry.backup``), with real parts: an image pushed to the running
registry is copied, a registry started on a fresh data dir holding only the copy serves it to ``docker pull``;
a garbage collection running meanwhile makes the copy fail rather than copy links to blobs it is deleting."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from arkserve import settings as settings_mod
from arkserve.errors import TemporaryError
from arkserve.registry import backup, config
from tests.live import server_port
from tests.registry.conftest import Stack, registry_part

pytestmark = pytest.mark.docker


@pytest.fixture
def restored(stack: Stack) -> Iterator[Stack]:
    """The stack's registry as a restore brings it back: a new data dir with only what the backup copied."""
    dest = stack.tmp / "backup"
    shutil.rmtree(dest, ignore_errors=True)
    copied = backup.copy(stack.settings.data_dir, dest)
    assert [name for name, _ in copied] == ["registry-auth", "registry"]
    s = settings_mod.load({"data_dir": str(stack.tmp / "restored"), "api.port": stack.settings.api.port,
                           "registry.port": server_port(), "runtime.kind": "docker"}, env={})
    shutil.rmtree(s.data_dir, ignore_errors=True)
    shutil.copytree(dest, s.data_dir)
    env = {**os.environ, **settings_mod.to_env(s), "ARKSERVE_DATA_DIR": str(s.data_dir)}
    with registry_part(s, env):
        yield Stack(stack.tmp, s, stack.store, stack.master, stack.api_url, env, stack.accounts, stack.pushed)


def test_a_pushed_image_survives_backup_and_restore(stack: Stack, request: pytest.FixtureRequest) -> None:
    stack.add_user("kate")
    assert stack.login("kate").returncode == 0
    push = stack.push("kate", "kate/keep:v1")
    assert push.returncode == 0, push.stderr
    back: Stack = request.getfixturevalue("restored")
    assert back.address != stack.address
    assert back.login("kate").returncode == 0  # tokens of the same API: the signing key came back too
    pull = back.pull("kate", "kate/keep:v1")  # the manifest and every blob, from the restored storage
    assert pull.returncode == 0, pull.stderr
    assert back.blob_bytes() == stack.blob_bytes()


def test_the_copy_refuses_while_a_garbage_collection_runs(stack: Stack,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    assert config.storage_root(stack.settings.data_dir).is_dir()
    lock = config.take_lock(stack.settings.data_dir, exclusive=True)  # as `arkserve image gc` holds it
    assert lock is not None
    try:
        with pytest.raises(TemporaryError, match="a garbage collection of the registry is running"):
            backup.copy(stack.settings.data_dir, tmp_path_factory.mktemp("refused"))
    finally:
        os.close(lock)
