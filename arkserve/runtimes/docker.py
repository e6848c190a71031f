"""The docker runtime: one container per replica on a Docker Engine (the docker SDK).

Containers are named ``ark-<service>-<replica>`` and labelled ``ark.managed=1``,
``ark.service``, ``ark.replica``, ``ark.revision``, ``ark.port`` (and ``ark.instance`` when
the runtime is given one, which keeps several arkserve installs on one daemon apart). The
command runs as ``/bin/sh -c`` under the daemon's init (signals reach the app, zombies are
reaped); the declared port is published on 127.0.0.1 with an ephemeral host port. Env:
``PORT`` (the declared port), ``ARK_PORT``, ``ARK_SERVICE``, ``ARK_REPLICA``,
``ARK_REVISION``, ``ARK_MODEL_DIR`` (first mount target) and the user env. cpus ->
``nano_cpus``, memory_mb -> ``mem_limit``, gpus -> a ``DeviceRequest``; mounts are
binds, read-only unless the mount says otherwise. A network-disk folder is never given to Docker by its
path (a replica with a writable mount of a parent folder could swap it for a link to ``/`` between the
check and the bind, and the daemon would follow it): arkserve opens it by descriptors and binds that very
folder itself onto a private, root-owned staging path, ``<data_dir>/runtime/mounts/<ark-name>/<n>``
(:mod:`arkserve.runtimes.docker_mounts`), which Docker binds instead; it is unmounted when the container is
removed, and leftovers of containers gone meanwhile at the next ``list()``. That takes root (``CAP_SYS_ADMIN``):
without it, network-disk mounts are refused on docker (docs/security.md).
Containers join the network ``network`` (default ``arkserve``), which the runtime creates on first use as a
bridge with traffic between its containers off (``enable_icc=false``): a replica reaches the outside world
but no other replica's port, so nothing calls an app past the gateway's signature check.
Isolation (docs/security.md): never privileged, every capability dropped but a
few, ``no-new-privileges``, and the image's own non-root ``USER`` or else uid/gid 65534 (never
root; ``HOME=/tmp`` unless the env sets it); no host path is bound but the spec's mounts (never
the data dir; a disk folder's staging bind shows that folder only). Images are never pulled from a
public registry: an image must exist on the host or carry a registry host in its reference
(``127.0.0.1:5000/app:1``). A pull is anonymous unless the spec carries the platform registry's token for
that repository (``pull_token``): the docker credentials of the platform's own user are never used.

A follower thread per container appends its stdout/stderr to
``<data_dir>/logs/<service>/<replica>.log`` (the local runtime's layout), so logs outlive
the container. For adopted containers, ``list()``/``inspect()``/``start()`` restart the
follower from the last timestamp in the file (no line is written twice). Nothing touches
the daemon before the first call, so the runtime can be built while dockerd is away.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import DeviceRequest
from docker.types import Mount as DockerMount

from arkserve.errors import PermanentError, RuntimeUnavailable, TemporaryError
from arkserve.logs import DEFAULT_MAX_BYTES, LogWriter, log_dir_for, log_path, parse_ts, rotate
from arkserve.registry.progress import PullProgress
from arkserve.runtimes.base import (
    ReplicaInfo,
    ReplicaPhase,
    ReplicaSpec,
    checked_object_name,
    object_name,
)
from arkserve.runtimes.docker_mounts import Staging
from arkserve.runtimes.docker_user import run_as
from arkserve.runtimes.follower import StreamFollower

_PHASES = {"created": ReplicaPhase.CREATED, "running": ReplicaPhase.RUNNING, "paused": ReplicaPhase.RUNNING,
           "restarting": ReplicaPhase.RUNNING}


@contextmanager
def _daemon(url: str) -> Iterator[None]:
    """Translate transport failures and daemon errors into arkserve's error tree."""
    try:
        yield
    except docker.errors.APIError as exc:
        msg = f"docker: {exc.explanation or exc}"
        if exc.status_code is not None and exc.status_code < 500:
            raise PermanentError(msg) from exc
        raise TemporaryError(msg) from exc
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        raise RuntimeUnavailable(f"Docker daemon unreachable at {url or 'the default socket'}: {exc}") from exc


def _has_registry(image: str) -> bool:
    first = image.split("/", 1)[0]
    return "/" in image and ("." in first or ":" in first or first == "localhost")


class _Follower(StreamFollower):
    """Copies one container's output into its log file until the container stops or close()."""

    def __init__(self, container: Container, writer: LogWriter) -> None:
        super().__init__(str(container.name), writer)
        self.container = container

    def open(self, after: float | None) -> Any:
        return self.container.logs(stream=True, follow=True, timestamps=True, stdout=True, stderr=True, since=after)


# An explicit, empty X-Registry-Auth: without ``auth_config`` the SDK sends whatever the docker config of the
# process's user (DOCKER_CONFIG, ~/.docker/config.json, its credential helpers) holds for that registry.
ANONYMOUS: dict[str, str] = {}
NO_ICC = {"com.docker.network.bridge.enable_icc": "false"}
DOCKER_NETWORKS = ("bridge", "default")  # Docker's own: used as they are


KEPT_CAPABILITIES = ("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL", "FOWNER", "DAC_OVERRIDE")


class DockerRuntime:
    name = "docker"

    def __init__(self, data_dir: Path, docker_url: str = "", *, instance: str = "", init: bool = True,
                 log_max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: int = 60, network: str = "arkserve") -> None:
        self.log_dir = log_dir_for(Path(data_dir))
        self._staging = Staging(Path(data_dir))
        self._name_locks: dict[str, threading.Lock] = {}
        self.url, self.instance, self.init, self.log_max_bytes = docker_url, instance, init, log_max_bytes
        self.timeout_s = timeout_s
        self.network = network or "bridge"
        self._network_ready = self.network in DOCKER_NETWORKS
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._followers: dict[str, _Follower] = {}
        # containers stop() has taken its follower from: never followed again, even while still listed (a removal
        # answered 409, in progress): their service may be deleted and its name (and log folder) reused meanwhile
        self._stopped: set[str] = set()

    @property
    def client(self) -> docker.DockerClient:
        """Connected on first use (the SDK asks the daemon for its API version), so a runtime can be
        built while the daemon is still away; each call then raises ``RuntimeUnavailable``."""
        with self._lock:
            if self._client is None:
                with _daemon(self.url):
                    self._client = (docker.DockerClient(base_url=self.url, timeout=self.timeout_s) if self.url
                                    else docker.from_env(timeout=self.timeout_s))
            return self._client

    def _ensure_network(self) -> str:
        """The network new containers join: created (no traffic between its containers) when it is missing."""
        if not self._network_ready:
            with _daemon(self.url):
                if not [n for n in self.client.networks.list(names=[self.network]) if n.name == self.network]:
                    try:
                        self.client.networks.create(self.network, driver="bridge", options=NO_ICC,
                                                    labels={"ark.managed": "1"})
                    except docker.errors.APIError as exc:
                        if exc.status_code != 409:  # 409: another start (or another arkserve) just created it
                            raise
            self._network_ready = True
        return self.network

    def _name_lock(self, name: str) -> threading.Lock:
        """Held from staging a container's disk mounts until it exists (start), and while releasing them."""
        with self._lock:
            return self._name_locks.setdefault(name, threading.Lock())

    def _release_orphans(self, names: set[str]) -> None:
        """Unmount the staged disk folders of containers that are gone (removed behind the platform's back, or
        while it was down); ``names``: the containers just listed."""
        for name in self._staging.names():
            lock = self._name_lock(name)
            if name in names or not lock.acquire(blocking=False):  # busy: a start or a stop of it runs
                continue
            try:
                if self._get(name) is None:
                    with suppress(OSError):  # still busy: the next list() tries again
                        self._staging.release(name)
            finally:
                lock.release()

    def _labels(self) -> list[str]:
        return ["ark.managed=1"] + ([f"ark.instance={self.instance}"] if self.instance else [])

    def _follow(self, c: Container) -> None:
        with self._lock:
            old = self._followers.get(c.id)
            if c.id in self._stopped or (old is not None and (old.is_alive() or c.status != "running")):
                return
            labels = c.labels
            path = log_path(self.log_dir, labels["ark.service"], labels["ark.replica"])
            follower = _Follower(c, LogWriter(path, labels["ark.replica"], self.log_max_bytes))
            self._followers[c.id] = follower
        follower.start()

    def _info(self, c: Container) -> ReplicaInfo:
        state, labels = c.attrs["State"], c.labels
        phase = _PHASES.get(state["Status"], ReplicaPhase.EXITED)
        binding = ((c.attrs["NetworkSettings"].get("Ports") or {}).get(f"{labels.get('ark.port')}/tcp") or [{}])
        started = state.get("StartedAt", "")
        ts = parse_ts(started[:26] + "Z") if started and not started.startswith("0001") else 0.0
        error = state.get("Error") or ("out of memory" if state.get("OOMKilled") else "")
        return ReplicaInfo(service=labels["ark.service"], replica=labels["ark.replica"],
                           revision=labels.get("ark.revision", ""), phase=phase, host="127.0.0.1",
                           port=int(binding[0].get("HostPort") or 0), started_at=ts,
                           exit_code=state.get("ExitCode") if phase is ReplicaPhase.EXITED else None,
                           runtime_id=c.id, error=error,
                           image_digest=labels.get("ark.image_digest") or str(c.attrs.get("Image", "")))

    def _get(self, name: str) -> Container | None:
        with _daemon(self.url):
            try:
                c: Container = self.client.containers.get(name)
            except docker.errors.NotFound:
                return None
        return c if c.labels.get("ark.managed") == "1" else None

    def _pull_with_token(self, image: str, token: str, on_progress: Callable[[str], None] | None = None) -> str:
        """Pull ``image`` from the platform registry with a token for exactly its repository (every start, so a
        re-pushed tag is picked up); returns the manifest digest. Registry refusals keep the registry's words."""
        ref, _, digest = image.partition("@")
        repo, tag = ref, "latest"
        if ":" in ref.rsplit("/", 1)[-1]:
            repo, tag = ref.rsplit(":", 1)
        if digest:
            tag = digest
        progress, said, last = PullProgress(), "", 0.0
        try:
            with _daemon(self.url):
                for line in self.client.api.pull(repo, tag, stream=True, decode=True,
                                                 auth_config={"registrytoken": token}):
                    if isinstance(line, dict) and line.get("error"):
                        raise docker.errors.APIError(line["error"], explanation=line["error"])
                    if on_progress is not None and isinstance(line, dict):
                        progress.feed(line)
                        now = time.monotonic()
                        if progress.layers and (not said or now - last >= 1.0):
                            said, last = progress.summary(), now
                            on_progress(said)
                found = self.client.images.get(image)
            if on_progress is not None and progress.layers and progress.summary() != said:
                on_progress(progress.summary())
        except (PermanentError, TemporaryError) as exc:
            text = exc.message.removeprefix("docker: ")
            if "not found" in text or "manifest unknown" in text:
                raise PermanentError(f'pulling "{image}": {text}', code="ImageNotFound") from None
            if "denied" in text or "unauthorized" in text or isinstance(exc, PermanentError):
                raise PermanentError(f'pulling "{image}": {text}', code="ImagePullDenied") from None
            raise
        digests = [d for d in found.attrs.get("RepoDigests") or [] if d.startswith(repo + "@")]
        return digests[0].split("@", 1)[1] if digests else str(found.id)

    def _check_image(self, image: str) -> None:
        with _daemon(self.url):
            try:
                self.client.images.get(image)
                return
            except docker.errors.ImageNotFound:
                if not _has_registry(image):
                    raise PermanentError(f'image "{image}" not found on the Docker host',
                                         code="ImageNotFound") from None
            try:  # anonymous: never the credentials of the platform's own user (its ~/.docker/config.json)
                self.client.images.pull(image, auth_config=ANONYMOUS)
            except docker.errors.NotFound:
                raise PermanentError(f'image "{image}" not found in its registry', code="ImageNotFound") from None
            except docker.errors.APIError as exc:  # a private image: the registry's words, and no retry
                text = str(exc.explanation or exc)
                if "denied" in text or "unauthorized" in text:
                    raise PermanentError(f'pulling "{image}" (anonymously): {text}', code="ImagePullDenied") from None
                raise

    def _user(self, image: str) -> str:
        """The image's own USER when it is not root, else nobody (65534): a replica never runs as root."""
        with _daemon(self.url):
            return run_as(self.client, image)

    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        name = checked_object_name(spec.service, spec.replica)
        existing = self._get(name)
        if existing is not None and existing.status == "running":
            self._follow(existing)
            return self._info(existing)
        digest = self._pull_with_token(spec.image, spec.pull_token, spec.on_progress) if spec.pull_token else ""
        if not digest:
            self._check_image(spec.image)
        env = {"HOME": "/tmp", **spec.env, "PORT": str(spec.port), "ARK_PORT": str(spec.port),  # noqa: S108
               "ARK_SERVICE": spec.service,
               "ARK_REPLICA": spec.replica, "ARK_REVISION": spec.revision}
        if spec.mounts:
            env["ARK_MODEL_DIR"] = spec.mounts[0].target
        labels = {"ark.managed": "1", "ark.service": spec.service, "ark.replica": spec.replica,
                  "ark.revision": spec.revision, "ark.port": str(spec.port), "ark.image_digest": digest}
        if self.instance:
            labels["ark.instance"] = self.instance
        kwargs: dict[str, Any] = {
            "name": name, "labels": labels, "environment": env, "detach": True, "init": self.init,
            "ports": {f"{spec.port}/tcp": ("127.0.0.1", None)},
            # never privileged; only the capabilities an app needs to drop root and bind low ports
            # (docs/security.md); no set-uid escalation; no host path but the spec's own mounts
            "privileged": False, "cap_drop": ["ALL"], "cap_add": list(KEPT_CAPABILITIES),
            "security_opt": ["no-new-privileges"], "user": self._user(spec.image),
            "network": self._ensure_network()}
        if spec.command.strip():
            kwargs.update(entrypoint=["/bin/sh", "-c"], command=[spec.command])
        if spec.cpus > 0:
            kwargs["nano_cpus"] = int(spec.cpus * 1e9)
        if spec.memory_mb > 0:
            kwargs["mem_limit"] = f"{spec.memory_mb}m"
        if spec.gpu_indices:  # exactly the GPUs placement assigned (a fractional type: the one it shares)
            kwargs["device_requests"] = [DeviceRequest(device_ids=[str(i) for i in spec.gpu_indices],
                                                       capabilities=[["gpu"]])]
        elif spec.gpus > 0:
            kwargs["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
        rotate(log_path(self.log_dir, spec.service, spec.replica))
        with self._name_lock(name):
            with _daemon(self.url):
                if existing is not None:
                    existing.remove(force=True)
            # a disk folder: the platform's own bind of the folder it opened, never the user's path (docker_mounts)
            sources = self._staging.bind(name, spec.mounts)
            kwargs["mounts"] = [DockerMount(m.target, source, type="bind", read_only=m.read_only)
                                for m, source in zip(spec.mounts, sources, strict=True)]
            try:
                with _daemon(self.url):
                    try:
                        c = self.client.containers.create(spec.image, **kwargs)
                    except docker.errors.NotFound:  # the image was checked: the network went (removed by hand)
                        self._network_ready = self.network in DOCKER_NETWORKS
                        raise
                    try:
                        c.start()
                    except docker.errors.APIError as exc:
                        with suppress(docker.errors.APIError):
                            c.remove(force=True)
                        if (spec.gpus > 0 or spec.gpu_indices) and "device driver" in str(exc.explanation):
                            raise TemporaryError(f"insufficient GPUs: want {spec.gpus}, have 0 "
                                                 f"({exc.explanation})", code="InsufficientCapacity") from exc
                        raise
            except BaseException:
                self._staging.release(name)
                raise
        with _daemon(self.url):
            self._follow(c)
            for _ in range(50):  # the published port appears in the state shortly after start
                c.reload()
                info = self._info(c)
                if info.port or info.phase is not ReplicaPhase.RUNNING:
                    return info
                time.sleep(0.02)
        return info

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        name = object_name(service, replica)
        c = self._get(name)
        if c is None:
            with self._name_lock(name):
                self._staging.release(name)
            return
        with _daemon(self.url):
            with suppress(docker.errors.NotFound):
                c.stop(timeout=max(0, math.ceil(grace_s)))
            with self._lock:
                follower = self._followers.pop(c.id, None)
                self._stopped.add(c.id)
            if follower is not None:
                follower.join(timeout=5.0)  # drain the last lines before the container goes
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: removal already in progress (list() releases its mounts)
                    raise
                return
        with self._name_lock(name):  # the container is gone: its staged disk folders go too
            self._staging.release(name)

    def list(self) -> list[ReplicaInfo]:
        with _daemon(self.url):
            found = self.client.containers.list(all=True, filters={"label": self._labels()}, ignore_removed=True)
        out = []
        for c in found:
            if "ark.service" in c.labels and "ark.replica" in c.labels:
                self._follow(c)
                out.append(self._info(c))
        self._release_orphans({str(c.name) for c in found})
        with self._lock:
            self._stopped &= {c.id for c in found}  # the rest are gone
        return out

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        c = self._get(object_name(service, replica))
        if c is None or (self.instance and c.labels.get("ark.instance") != self.instance):
            return None
        self._follow(c)
        return self._info(c)

    def close(self) -> None:
        with self._lock:
            followers, self._followers = list(self._followers.values()), {}
        for f in followers:
            f.close()
        for f in followers:
            f.join(timeout=2.0)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
