"""A network-disk folder swapped for a link after it was checked is never followed into a mount.

The reconciler checks a disk mount (:func:`arkserve.reconciler.specs.disk_mount`: resolved, inside the owner's
disk) and the runtime mounts it later. Meanwhile a replica of the same user with a writable mount of a parent
folder can rename the folder away and put a link to ``/`` (here: to a folder holding a marker) in its place.
The runtimes open the folder by descriptors (no link followed) and mount that descriptor (bwrap
``--bind-fd``; on docker a staging bind of the descriptor that Docker binds), so the replica either is refused
(the link was there when the runtime opened the folder) or sees the folder that was opened, never the marker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve.errors import PermanentError
from arkserve.reconciler.specs import disk_mount
from arkserve.runtimes import sandbox
from arkserve.runtimes.base import Mount, ReplicaSpec, Runtime
from arkserve.storage import paths
from arkserve.storage.paths import BadPath, LinkRefused

from .conftest import APP_DIR, DOCKER_INSTANCE, TEST_IMAGE, http_get, wait_until

SERVICE, REPLICA = "swap", "r0000c1"
LOCAL_APP = f"ls /data > /tmp/ls 2>&1; cd /tmp; exec {sys.executable} -m http.server $PORT --bind 127.0.0.1"
DOCKER_APP = "mkdir -p /tmp/www; ls /data > /tmp/www/ls 2>&1; exec httpd -f -p $PORT -h /tmp/www"


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_daemon")
    return str(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def rt(kind: str, data_dir: Path) -> Iterator[Runtime]:
    if kind == "docker":
        from arkserve.runtimes.docker import DockerRuntime

        runtime: Runtime = DockerRuntime(data_dir, instance=DOCKER_INSTANCE)
    else:
        from arkserve.runtimes.local import LocalRuntime

        runtime = LocalRuntime(data_dir)
    yield runtime
    runtime.stop(SERVICE, REPLICA, grace_s=0)
    runtime.close()


@pytest.fixture
def folder(data_dir: Path) -> Path:
    """``owner``'s ``datasets/flowers``, holding ``in.txt``."""
    flowers = data_dir / "disks" / "owner" / "datasets" / "flowers"
    flowers.mkdir(parents=True)
    (flowers / "in.txt").write_text("a flower dataset")
    return flowers


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every disk (stands for ``/``), holding ``marker.txt``."""
    target = tmp_path / "host"
    target.mkdir()
    (target / "marker.txt").write_text("the host's")
    return target


def swap_for_link(folder: Path, target: Path) -> None:
    """What the other replica does through its writable mount of ``datasets``."""
    os.rename(folder, folder.with_name(folder.name + ".orig"))
    os.symlink(target, folder)


def spec(kind: str, mount: Mount) -> ReplicaSpec:
    image, command = (TEST_IMAGE, DOCKER_APP) if kind == "docker" else (f"dir:{APP_DIR}", LOCAL_APP)
    return ReplicaSpec(SERVICE, REPLICA, "rev1", image, command, 8000, mounts=(mount,))


def listing(rt: Runtime, kind: str, mount: Mount) -> str:
    """What the replica with ``mount`` at /data lists there."""
    info = rt.start(spec(kind, mount))
    seen: list[str] = []

    def answered() -> bool:
        try:
            seen.append(http_get(info, "/ls"))
        except OSError:
            return False
        return True

    wait_until(answered, timeout=20, what="the replica's listing of /data")
    return seen[-1]


@pytest.mark.parametrize("read_only", [True, False])
def test_a_folder_swapped_for_a_link_after_the_check_is_refused(rt: Runtime, kind: str, data_dir: Path,
                                                                folder: Path, outside: Path,
                                                                read_only: bool) -> None:
    mount = disk_mount(data_dir, "owner", "/datasets/flowers", "/data", read_only)  # the check passes
    swap_for_link(folder, outside)
    with pytest.raises(PermanentError, match="symbolic link") as err:
        rt.start(spec(kind, mount))
    assert isinstance(err.value, LinkRefused)
    assert rt.inspect(SERVICE, REPLICA) is None
    assert not (data_dir / "runtime" / "mounts" / f"ark-{SERVICE}-{REPLICA}").exists()


def swap_at_the_bind(rt: Runtime, kind: str, folder: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap ``folder`` for a link at the last moment before the mount is made by someone else: as bwrap is
    spawned (local), as the container is created (docker). Whatever the runtime opened or checked, it did so
    before this."""
    if kind == "docker":
        from docker.models.containers import ContainerCollection

        create = ContainerCollection.create

        def create_after_swap(self: ContainerCollection, *args: object, **kwargs: object) -> object:
            swap_for_link(folder, outside)
            return create(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(ContainerCollection, "create", create_after_swap)
        return
    popen = subprocess.Popen

    def popen_after_swap(argv: list[str], *args: object, **kwargs: object) -> object:
        if argv[0].endswith("bwrap") and not os.path.islink(folder):
            swap_for_link(folder, outside)
        return popen(argv, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", popen_after_swap)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_folder_swapped_for_a_link_just_before_the_bind_mounts_the_folder_opened(
        rt: Runtime, kind: str, data_dir: Path, folder: Path, outside: Path, read_only: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The swap lands after the runtime opened the folder, just before the bind (the window a path-based bind
    has): what is mounted is the folder that was opened, now at ``flowers.orig``, never the link's target."""
    mount = disk_mount(data_dir, "owner", "/datasets/flowers", "/data", read_only)  # the check passes
    swap_at_the_bind(rt, kind, folder, outside, monkeypatch)
    assert listing(rt, kind, mount) == "in.txt\n"
    assert os.path.islink(folder)  # the swap did happen


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


@pytest.fixture
def docker_rt(docker_daemon: None, data_dir: Path) -> Iterator[Runtime]:
    from arkserve.runtimes.docker import DockerRuntime

    runtime = DockerRuntime(data_dir, instance=DOCKER_INSTANCE)
    yield runtime
    runtime.stop(SERVICE, REPLICA, grace_s=0)
    runtime.close()


@pytest.mark.docker
@pytest.mark.skipif(os.geteuid() != 0, reason="the staging binds need root")
def test_docker_staging_binds_go_with_the_container_and_with_orphans(docker_rt: Runtime, data_dir: Path,
                                                                     folder: Path) -> None:
    rt, kind = docker_rt, "docker"
    mount = disk_mount(data_dir, "owner", "/datasets/flowers", "/data", True)
    assert listing(rt, kind, mount) == "in.txt\n"
    staged = data_dir / "runtime" / "mounts" / f"ark-{SERVICE}-{REPLICA}" / "0"
    assert mounted(staged)
    assert oct((data_dir / "runtime" / "mounts").stat().st_mode & 0o777) == "0o700"
    rt.stop(SERVICE, REPLICA, grace_s=0)
    assert not staged.parent.exists()  # unmounted and removed (only rmdir: the folder's files are all there)
    assert (folder / "in.txt").read_text() == "a flower dataset"

    listing(rt, kind, mount)  # again, then the container goes behind the platform's back
    import docker

    client = docker.from_env()
    client.containers.get(f"ark-{SERVICE}-{REPLICA}").remove(force=True)
    client.close()
    rt.list()  # adoption: the orphan's staging bind is released
    assert not staged.parent.exists() and (folder / "in.txt").exists()


def test_docker_refuses_disk_mounts_without_root(data_dir: Path, folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root the platform cannot bind the folder itself, and Docker would look the path up: refused."""
    from arkserve.runtimes import docker_mounts

    monkeypatch.setattr(docker_mounts.os, "geteuid", lambda: 1000)
    staging = docker_mounts.Staging(data_dir)
    with pytest.raises(PermanentError, match="need the platform to run as root"):
        staging.bind("ark-swap-r0000c1", (disk_mount(data_dir, "owner", "/datasets/flowers", "/data", True),))
    assert staging.bind("ark-swap-r0000c1", (Mount(str(folder), "/m"),)) == [str(folder)]  # by path: not a disk


def test_the_sandbox_binds_disk_folders_by_descriptor_only(data_dir: Path, folder: Path) -> None:
    mount = disk_mount(data_dir, "owner", "/datasets/flowers", "/data", False)
    policy = sandbox.SandboxPolicy(data_dir)
    with pytest.raises(ValueError, match="without its descriptor"):
        sandbox.argv(policy, APP_DIR, (mount,), "true")
    with sandbox.opened_mounts((mount, Mount(str(APP_DIR), "/m"))) as fds:
        assert list(fds) == [0]
        line = sandbox.argv(policy, APP_DIR, (mount, Mount(str(APP_DIR), "/m")), "true", fds)
        at = line.index("/data")
        assert line[at - 2:at] == ["--bind-fd", str(fds[0])] and str(folder) not in line
        assert line[line.index("/m") - 2:line.index("/m")] == ["--ro-bind", str(APP_DIR)]


def test_open_disk_folder_by_components(data_dir: Path, folder: Path, outside: Path) -> None:
    disks = str((data_dir / "disks").resolve())
    fd, dev, ino = paths.open_disk_folder(disks, str(folder.resolve()))
    try:
        assert (dev, ino) == (os.stat(folder).st_dev, os.stat(folder).st_ino)
        assert os.listdir(fd) == ["in.txt"]
    finally:
        os.close(fd)
    for bad in (disks, str(outside), f"{disks}/.staging/owner", f"{disks}/owner/../../x"):
        with pytest.raises(BadPath):
            paths.open_disk_folder(disks, bad)
    (folder.parent / "link").symlink_to(folder)  # a link inside the disk, even to the disk: never followed
    with pytest.raises(LinkRefused):
        paths.open_disk_folder(disks, str(folder.parent / "link"))
    os.rename(folder.parent, folder.parent.with_name("moved"))
    (folder.parent.parent / "datasets").symlink_to(folder.parent.with_name("moved"))  # a link on the way
    with pytest.raises(LinkRefused):
        paths.open_disk_folder(disks, str(folder))


@pytest.mark.skipif(os.geteuid() != 0, reason="writable folders are handed to the replica user only as root")
def test_a_writable_folder_swapped_after_its_open_hands_over_only_what_was_opened(data_dir: Path,
                                                                                 folder: Path) -> None:
    """The hand-over to the replica user (chown) goes by the descriptor the runtime opened, not by the path: a
    swap between the open and the hand-over must not make root give another user's folder to ``nobody``."""
    other = data_dir / "disks" / "other" / "private"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("another user's")
    mount = disk_mount(data_dir, "owner", "/datasets/flowers", "/data", False)
    policy = sandbox.policy_for(data_dir, replica_user="nobody")
    with sandbox.opened_mounts((mount,)) as fds:
        swap_for_link(folder, other)  # after the open, before the hand-over
        sandbox.command_line(policy, spec("local", mount), APP_DIR, fds)
    assert (other / "secret.txt").stat().st_uid == 0 and other.stat().st_uid == 0  # untouched
    opened = folder.with_name(folder.name + ".orig")
    assert opened.stat().st_uid == policy.uid and (opened / "in.txt").stat().st_uid == policy.uid
