"""What the runtime is asked to start for a replica (:class:`~arkserve.runtimes.base.ReplicaSpec`): its instance
type's size, its mounts (folders of the owner's network disk; model-market versions, fetched into this host's
model cache first), its environment and GPU placement, and a pull token for an image in the platform registry.

A batch of starts reads the store rows this needs once (:class:`SpecReads`); the events a build has to tell
(pulling, fetching a model, evicting one from the cache) go through the worker's ``event`` callback.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from arkserve.capacity.usage import indices
from arkserve.domain.services import revision
from arkserve.errors import ArkserveError, NotFound, PermanentError
from arkserve.reconciler.appenv import replica_env
from arkserve.reconciler.capacity import Placer, gpu_env
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.modelcache import ModelCache
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.base import Mount, ReplicaSpec
from arkserve.storage import paths
from arkserve.store import instance_types
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.services import ReplicaRow, ServiceRow
from arkserve.store.users import User

log = logging.getLogger("arkserve.reconciler")


def disk_mount(data_dir: Path, owner: str, ref: str, target: str, read_only: bool) -> Mount:
    """The mount of the folder ``ref`` of ``owner``'s network disk at ``target``.

    The check here (the folder opened from the disk root as the runtime will: a folder inside the owner's disk,
    existing, no symbolic link on the way, ``BadPath`` else) gives an early, clear error. The path is built
    as the user wrote it, never resolved: a link a replica planted there refuses the start, it is not followed.
    A replica of the same user with a writable mount of a parent folder can still swap the folder for a link
    to anything after this check, before the runtime mounts it. So the mount carries the disk root, and the
    runtime opens the folder from it by descriptors again (``O_NOFOLLOW`` on every component) and mounts that
    descriptor, never the path (:func:`arkserve.storage.paths.open_disk_folder`; docs/security.md)."""
    disks = (data_dir / "disks").resolve()  # the platform's own folder: no user changes it
    source = disks.joinpath(*paths.split(owner), *paths.split(ref.lstrip("/")))
    try:
        fd, _, _ = paths.open_disk_folder(disks, source)
    except NotFound:
        raise PermanentError(f"model path {ref!r} not found on {owner}'s disk ({source})") from None
    except paths.BadPath as exc:
        raise paths.BadPath(f"disk mount {ref!r} of {owner}'s disk: {exc.message}") from None
    os.close(fd)
    return Mount(str(source), target, read_only, disk_root=str(disks))


class EventLog(Protocol):
    """The worker's event log (``ServiceWorker._event``)."""

    def __call__(self, svc: ServiceRow, kind: str, message: str, replica: str = "") -> None: ...


@dataclass
class SpecReads:
    """The store rows a replica's spec is built from, read once for a batch of starts
    (:meth:`SpecBuilder.reads`); a failed read is kept and raised for each replica that needs it, where a
    read of its own would have raised."""

    types: dict[str, dict[str, Any]]  # instance types by name
    owner: User | ArkserveError
    tokens: dict[str, tuple[float, str | ArkserveError]] = field(default_factory=dict)  # image -> (minted, token)

    def instance_type(self, store: Store, name: str) -> dict[str, Any]:
        if name in self.types:
            return self.types[name]
        with store.read() as conn:  # not there when read (or created since): the store's answer, NotFound
            return instance_types.get(conn, name)

    def user(self) -> User:
        if isinstance(self.owner, ArkserveError):
            raise self.owner
        return self.owner


@dataclass
class SpecBuilder:
    """Builds one service worker's replica specs; ``model_cache`` is made on the first model mount and pins each
    replica's version until the worker unpins it at the replica's stop."""

    store: Store
    runtime_name: str
    config: ReconcilerConfig
    data_dir: Path
    event: EventLog
    registry: RegistryPulls | None = None  # pull tokens for images in the platform registry
    placer: Placer | None = None  # for a GPU share's memory
    model_cache: ModelCache | None = None

    def build(self, svc: ServiceRow, replica_id: str, placed: ReplicaRow | None = None,
              reads: SpecReads | None = None) -> ReplicaSpec:
        """What the runtime starts; ``reads``: the store rows it needs, read once for a batch of starts (else
        read here)."""
        spec = svc.spec
        reads = reads or self.reads(svc)
        itype = reads.instance_type(self.store, spec.get("instance_type", "cpu.small"))
        trusted = reads.user().is_admin  # may run unsandboxed (runtimes/local.py)
        mounts: tuple[Mount, ...] = ()
        model = spec.get("model") or {}
        if model.get("source") == "disk" and model.get("mount_path"):
            mounts = (disk_mount(self.data_dir, svc.owner, model.get("ref", ""), model["mount_path"], True),)
        for m in spec.get("mounts") or []:
            if m["source"] == "model":
                mounts += (Mount(self._model_source(svc, m["ref"], m["digest"], replica_id), m["mount_path"], True),)
            else:
                mounts += (disk_mount(self.data_dir, svc.owner, m["ref"], m["mount_path"],
                                      bool(m.get("read_only", True))),)
        gpu_ids = indices(placed.gpu_indices) if placed is not None else ()
        share = placed.gpu_share_mb if placed is not None else 0
        user_env = spec.get("env") or {}
        env = {**replica_env(self.runtime_name, spec["image"], user_env),
               **gpu_env(gpu_ids, share, self.placer.gpu_memory_mb(gpu_ids[0]) if self.placer and gpu_ids else 0,
                        user_env)}
        return ReplicaSpec(
            service=svc.name, replica=replica_id, revision=revision(spec), image=spec["image"],
            pull_token=self._pull_token(svc, reads),
            on_progress=lambda words: self.event(svc, "pulling", f"{spec['image']}: {words}", replica_id),
            command=spec["command"], port=int(spec["port"]),
            env=env, cpus=float(itype["cpus"]), memory_mb=int(itype["memory_mb"]), gpus=int(itype["gpus"]),
            gpu_indices=gpu_ids, gpu_memory_mb=share, mounts=mounts, trusted=trusted)

    def unpin(self, service: str, replica: str) -> None:
        """The replica is stopped: its model versions may be evicted again (its pin may be from an earlier
        reconciler process: adopted replicas keep theirs)."""
        self._cache().unpin(service, replica)

    def reads(self, svc: ServiceRow) -> SpecReads:
        """One read of what :meth:`build` needs from the store for the replicas of a batch: the instance
        types and the service's owner."""
        with self.store.read() as conn:
            types = {t["name"]: t for t in instance_types.list_all(conn)}
            try:
                return SpecReads(types, user_store.get_by_id(conn, svc.owner_id))
            except ArkserveError as exc:
                return SpecReads(types, exc)

    def _pull_token(self, svc: ServiceRow, reads: SpecReads) -> str:
        """A token for exactly the service's repository when its image is in the platform registry; one token
        serves the replicas of a batch while it is fresh (a tenth of its lifetime)."""
        if self.registry is None:
            return ""
        image = str(svc.spec["image"])
        at, token = reads.tokens.get(image, (float("-inf"), ""))
        if time.monotonic() - at >= self.registry.ttl_s / 10:
            owner = reads.user()
            try:
                with self.store.read() as conn:
                    token = self.registry.token_for(conn, image, owner.username, owner.is_admin)
            except PermanentError as exc:  # ImagePullDenied: the same answer for each replica of the batch
                token = exc
            reads.tokens[image] = (time.monotonic(), token)
        if isinstance(token, ArkserveError):
            raise token
        return token

    def _model_source(self, svc: ServiceRow, ref: str, digest: str, replica_id: str) -> str:
        """The version's folder in this host's model cache, fetched first when it is not there yet (or not
        complete)."""
        cache = self._cache()
        cache.pin(svc.name, replica_id, digest)  # until the replica is stopped
        cached = cache.ensure(digest, None)  # None: only when it is there and complete (never built without it)
        if cached is not None:
            return str(cached)
        pins = cache.pin_keys()  # before the store read: a pin seen here has its replica's row written already
        with self.store.read() as conn:
            manifest = model_store.manifest_by_digest(conn, digest)
            services = service_store.list_all(conn)
            names = {s.id: s.name for s in services}
            live = {(names.get(r.service_id, ""), r.id) for r in service_store.list_replicas(conn)}
        in_use = {m.get("digest", "") for s in services  # the canary's spec too: its replicas mount it
                  for spec in (s.spec, s.canary_spec or {}) for m in spec.get("mounts") or []}
        if manifest is None:
            raise PermanentError(f"model {ref} ({digest}) is no longer in the model market", code="ModelNotFound")
        last = [0.0]

        def progress(pct: int) -> None:
            if pct in (0, 100) or time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                self.event(svc, "fetching", f"fetching model {ref} ({digest[:19]}) {pct}%", replica_id)

        path = cache.ensure(digest, manifest, progress)
        cache.forget(pins - live)  # replicas gone while no reconciler ran (orphans stopped at adoption)
        gone = cache.evict(in_use)
        if gone:  # versions no service mounts: whose they were (another user's private model) is not told here
            log.info("model cache: evicted %s", ", ".join(gone))
            self.event(svc, "evicted", f"model cache: evicted {len(gone)} version(s) no replica uses "
                                       "(least recently used) to make room")
        return str(path)

    def _cache(self) -> ModelCache:
        if self.model_cache is None:
            self.model_cache = ModelCache(self.data_dir, self.config.model_cache_bytes)
        return self.model_cache

