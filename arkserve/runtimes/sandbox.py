"""The local runtime's sandbox: the ``bwrap`` (bubblewrap) command line that confines one replica.

A sandboxed replica gets its own mount, PID and IPC namespaces and sees only:
- the system, read-only: ``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/etc``, ``/opt`` (where they exist),
  the Python installation the platform itself runs on (so ``sys.executable``-style commands work) and
  the operator's extra ``runtime.sandbox_paths``;
- its app directory, read-only, at the same path (the working directory);
- its mounts (model-market versions, network-disk folders) at the paths the user chose, read-only unless
  the mount says otherwise. A network-disk folder is bound by descriptor (``--bind-fd``/``--ro-bind-fd``):
  :func:`opened_mounts` opens it from the disks directory component by component without following a link,
  and bwrap binds exactly that folder, so a folder swapped for a link after the reconciler checked it (by a
  replica with a writable mount of its parent) is refused, or the original is bound, never the link's
  target;
- a private ``/tmp`` (also ``HOME``), a fresh ``/proc`` and a minimal ``/dev`` (plus ``/dev/nvidia*`` on
  GPU hosts).
The data directory (master key, store, logs, other users' apps and disks) is never in that view: a path
under it is refused as an app directory or extra path, and where it lies under a system directory it is
covered by an empty tmpfs. When the platform runs as root, the command also drops to an unprivileged
uid/gid (``runtime.replica_user``, ``nobody`` by default) with no capabilities and no way to regain them,
through ``setpriv`` inside the sandbox. The network is the host's: the app listens on ``$PORT`` on
127.0.0.1 where the gateway reaches it (docs/security.md says what that allows).

This module builds the command line (:func:`command_line`, which also refuses what cannot run
confined) and probes whether ``bwrap`` works here; :mod:`arkserve.runtimes.local` runs it, with the
descriptors of :func:`opened_mounts` passed on to bwrap.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from arkserve.domain.services import overlaps
from arkserve.errors import PermanentError
from arkserve.runtimes import mount_owner
from arkserve.runtimes.base import Mount, ReplicaSpec
from arkserve.storage import paths

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
SANDBOX_TMP = "/tmp"  # noqa: S108 - a fresh tmpfs inside the sandbox, private to the replica
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow user namespaces, "
                "or run the platform with --runtime docker")


@dataclass(frozen=True)
class SandboxPolicy:
    data_dir: Path
    extra_paths: tuple[str, ...] = ()
    uid: int | None = None  # drop to this uid/gid inside the sandbox (set when the platform runs as root)
    gid: int | None = None


def policy_for(data_dir: Path, *, replica_user: str = "nobody", extra_paths: Sequence[str] = ()) -> SandboxPolicy:
    """The policy of a runtime whose state lives in ``data_dir``; uid/gid only when this process is root."""
    uid = gid = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(replica_user)
        except KeyError:
            raise ValueError(f"runtime.replica_user {replica_user!r} is not a user on this host") from None
        if pw.pw_uid == 0:
            raise ValueError("runtime.replica_user must not be root")
        uid, gid = pw.pw_uid, pw.pw_gid
    return SandboxPolicy(Path(data_dir).resolve(), tuple(extra_paths), uid, gid)


@functools.cache
def unavailable() -> str:
    """Why replicas cannot be sandboxed on this host ('' when they can). Probed once per process."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"bwrap is not installed: {INSTALL_HINT}"
    try:
        proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-ipc", "--", "/bin/true"],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not run here ({exc}): {INSTALL_HINT}"
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        return f"bwrap cannot create namespaces here ({reason}): {INSTALL_HINT}"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing: the sandbox needs it to drop root"
    return ""


def inside_data_dir(path: Path, data_dir: Path) -> bool:
    """Whether ``path`` is the data dir, lies inside it, or contains it (links resolved)."""
    return overlaps(str(Path(path).resolve()), str(Path(data_dir).resolve()))


def _python_roots() -> list[str]:
    """The platform's own Python (installation and virtual environment), so commands naming it run."""
    roots = {sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(r for r in roots if r and r != "/")


def _covered(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _parents(dest: str, bound: Sequence[str], made: set[str]) -> list[str]:
    """``--dir`` for each missing ancestor of ``dest``, world-traversable (bwrap would make them 0700)."""
    out: list[str] = []
    for parent in reversed(Path(dest).parents):
        p = str(parent)
        if p == "/" or p in made or _covered(p, bound):
            continue
        made.add(p)
        out += ["--perms", "0755", "--dir", p]
    return out


@functools.cache
def _which(name: str) -> str | None:
    return shutil.which(name)


@functools.lru_cache(maxsize=16)
def _base(policy: SandboxPolicy) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """The part of the command line every replica of ``policy`` shares (the system, the platform's Python, the
    extra paths, GPU devices), with the paths it binds and the directories it makes. Read once per process:
    about 5 ms of path resolution per start otherwise."""
    out = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--unshare-ipc", "--proc", "/proc", "--dev", "/dev",
           "--perms", "1777", "--tmpfs", SANDBOX_TMP]
    bound: list[str] = []
    made: set[str] = {SANDBOX_TMP}
    for d in SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():
            out += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            out += ["--ro-bind", d, d]
            bound.append(d)
    for extra in [*_python_roots(), *policy.extra_paths]:
        real = str(Path(extra).resolve())
        if not Path(real).exists() or _covered(real, bound) or Path(real).is_relative_to(policy.data_dir):
            continue
        out += [*_parents(real, bound, made), "--ro-bind", real, real]
        bound.append(real)
    if _covered(str(policy.data_dir), bound):
        out += ["--tmpfs", str(policy.data_dir)]  # hide it where a system directory would show it
    return tuple(out), tuple(bound), frozenset(made)


@contextmanager
def opened_mounts(mounts: Sequence[Mount]) -> Iterator[dict[int, int]]:
    """The network-disk folders among ``mounts`` opened by descriptors (index in ``mounts`` -> descriptor),
    closed when the block ends: keep it open across the spawn of bwrap (``pass_fds``). A folder that is a link
    now, or gone, is refused (``BadPath``, ``NotFound``, ``Conflict``: permanent errors)."""
    fds: dict[int, int] = {}
    try:
        for i, m in enumerate(mounts):
            if m.disk_root:
                fds[i] = paths.open_disk_folder(m.disk_root, m.source)[0]
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


_GPU_NODE = re.compile(r"nvidia(\d+)")


def gpu_devices(gpus: Sequence[int], dev: Path = Path("/dev")) -> list[str]:
    """The NVIDIA device nodes a replica placed on ``gpus`` gets: its own ``/dev/nvidiaN`` and the shared
    control nodes (``nvidiactl``, ``nvidia-uvm*``, ``nvidia-modeset``); none at all without a GPU. Never another
    replica's GPU: ``CUDA_VISIBLE_DEVICES`` alone is a variable the app can change."""
    if not gpus:
        return []
    wanted = {str(i) for i in gpus}
    found = []
    for node in sorted(dev.glob("nvidia*")):
        m = _GPU_NODE.fullmatch(node.name)
        if (m is None and not node.is_dir()) or (m is not None and m.group(1) in wanted):
            found.append(str(node))
    return found


@contextmanager
def env_script(env: Mapping[str, str], confined: bool = True) -> Iterator[int | None]:
    """A memfd holding ``export NAME='value'`` lines for ``env``, read by the replica's shell once it runs as
    the replica user (:func:`argv`), closed when the block ends (keep it open across the spawn: ``pass_fds``).
    The replica's environment never reaches bwrap and setpriv, which run as root when the platform does:
    ``LD_PRELOAD`` there would be code run as root on the host. ``None`` when not ``confined``."""
    if not confined:
        yield None
        return
    fd = os.memfd_create("ark-replica-env", os.MFD_CLOEXEC)
    try:
        os.write(fd, "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()).encode())
        yield fd
    finally:
        os.close(fd)


def argv(policy: SandboxPolicy, app_dir: Path, mounts: Sequence[Mount], command: str,
         fds: Mapping[int, int] | None = None, gpus: Sequence[int] = (), env_fd: int | None = None) -> list[str]:
    """The full command line: ``bwrap …`` around ``/bin/sh -c COMMAND`` (run in ``app_dir``). ``fds``: the
    descriptors of the network-disk mounts (:func:`opened_mounts`), bound by descriptor; the other mounts
    (platform-owned: the model cache) are bound by path. ``gpus``: the GPU indices placed for the replica (their
    device nodes only). ``env_fd``: :func:`env_script` of the replica's environment, sourced by its shell after
    the switch to the replica user (pass it open to the child)."""
    base, bound_base, made_base = _base(policy)
    out, bound, made = list(base), list(bound_base), set(made_base)
    for node in gpu_devices(gpus):
        out += ["--dev-bind", node, node]
    app = str(Path(app_dir).resolve())
    out += [*_parents(app, bound, made), "--ro-bind", app, app]
    for i, m in enumerate(mounts):
        out += _parents(m.target, bound, made)
        if m.disk_root:  # never by path: what is there now may be a link planted since the check
            fd = (fds or {}).get(i)
            if fd is None:
                raise ValueError(f"network-disk mount {m.target} without its descriptor (sandbox.opened_mounts)")
            out += ["--ro-bind-fd" if m.read_only else "--bind-fd", str(fd), m.target]
        else:
            out += ["--ro-bind" if m.read_only else "--bind", str(Path(m.source).resolve()), m.target]
    out += ["--chdir", app, "--setenv", "HOME", SANDBOX_TMP]
    if policy.uid is not None:
        setpriv = _which("setpriv") or "/usr/bin/setpriv"
        out += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", setpriv, f"--reuid={policy.uid}",
                f"--regid={policy.gid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
    else:
        out += ["--"]
    if env_fd is not None:
        command = f". /dev/fd/{env_fd}\n{command}"
    return [*out, "/bin/sh", "-c", command]


def command_line(policy: SandboxPolicy, spec: ReplicaSpec, app_dir: Path,
                 fds: Mapping[int, int] | None = None, gpus: Sequence[int] = (),
                 env_fd: int | None = None) -> list[str]:
    """The sandboxed command line; unconfined only for trusted (admin) replicas where bwrap cannot run (no
    mount at all then: the app is told the source path, and its environment is the process's). ``fds``:
    :func:`opened_mounts` of ``spec.mounts``; ``gpus`` and ``env_fd`` as in :func:`argv`."""
    reason = unavailable()
    if reason:
        if not spec.trusted:
            raise PermanentError(f"the local runtime cannot sandbox replicas of non-admin users: {reason}",
                                 code="SandboxUnavailable")
        return ["/bin/sh", "-c", spec.command]
    st = app_dir.stat()
    if policy.uid is not None and st.st_uid != policy.uid and st.st_mode & 0o005 != 0o005:
        raise PermanentError(f'image directory "{app_dir}" is not readable by the replica user (uid {policy.uid}): '
                             f"make it world-readable, e.g. chmod -R a+rX {app_dir}", code="ValidationFailed")
    if policy.uid is not None and policy.gid is not None:
        for i, m in enumerate(spec.mounts):  # a writable disk folder belongs to the uid the replica runs as
            if not m.read_only and m.disk_root and fds and i in fds:
                # by the descriptor bwrap will bind, never by the path again: a replica could have swapped it
                # for a link to another user's folder since it was opened, and root would chown that one
                mount_owner.hand_over_fd(fds[i], policy.uid, policy.gid)
    return argv(policy, app_dir, spec.mounts, spec.command, fds, gpus, env_fd)
