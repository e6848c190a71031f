"""Placement in the reconciler: this host's inventory in the store, and a place on it for each replica it starts.

:class:`Placer` records the host's inventory (``arkserve.capacity.inventory``) at start and every
``inventory_every_s``, and places a replica (``arkserve.capacity.placement``) right before it starts: under one
lock, so two services' passes never take the same GPU, and in one transaction that reads what the replicas hold
and writes the new replica's placement (a pass's new replicas are placed one after the other in one such
transaction: ``assign_many``, which also writes the pass's pending rows of them, so each new row is written
once, placed). What placing reads and does not change (the host's capacity, the instance types, prepaid
reservations, billing's answer for an owner, type and count) is read once per such transaction, not per
replica. Billing says how the replica is billed (``billing.admission``).

One reconciler places on its own host only (the runtime it drives), but weighs prepaid reservations over every
host (all hosts' capacity and what replicas hold on each); a replica holds its placement from the
moment it is placed until its row is deleted (stopped), and gives it up while it waits as Unschedulable.
A runtime that schedules replicas itself (``CLUSTER_SCHEDULED``: Kubernetes) is not fitted onto the
reconciler's host: the replica is recorded on that cluster with its billing mode, and the cluster's scheduler
places it (a Pod it cannot place comes back from the runtime as pending/Unschedulable with its message).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection

from arkserve.billing import admission
from arkserve.capacity.inventory import HostInventory, read_inventory
from arkserve.capacity.placement import Allocation, HostCapacity, Placement, Request, Size, Unfit, place
from arkserve.capacity.usage import allocation_of, host_capacity, size_of
from arkserve.errors import ArkserveError, TemporaryError
from arkserve.reconciler.batch import PassWrites
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.store import hosts as host_store
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store.db import Store
from arkserve.store.services import ReplicaRow, ServiceRow

log = logging.getLogger("arkserve.reconciler")

CLUSTER_SCHEDULED = frozenset({"kubernetes"})  # runtimes whose own scheduler places replicas on nodes


def gpu_env(gpu_ids: tuple[int, ...], share_mb: int, gpu_memory_mb: int, user_env: Mapping[str, str]) -> dict[str, str]:
    """What a replica with GPUs is told: ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (so CUDA numbers GPUs as NVML does, and
    ``CUDA_VISIBLE_DEVICES`` means the placed ones), and for a share of a GPU (packing, not isolation: frameworks
    honour it or not):

    ``ARK_GPU_MEMORY_MB``/``ARK_GPU_MEMORY_FRACTION`` for the app (PyTorch:
    ``torch.cuda.set_per_process_memory_fraction``); JAX honours ``XLA_PYTHON_CLIENT_MEM_FRACTION``,
    TensorFlow ``TF_FORCE_GPU_ALLOW_GROWTH``, and PyTorch's allocator returns memory sooner with
    ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``. The service's own env wins."""
    order = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if gpu_ids and "CUDA_DEVICE_ORDER" not in user_env else {}
    if share_mb <= 0:
        return order
    fraction = f"{share_mb / gpu_memory_mb:.3f}" if gpu_memory_mb > 0 else "1"
    hints = {"ARK_GPU_MEMORY_MB": str(share_mb), "ARK_GPU_MEMORY_FRACTION": fraction,
             "XLA_PYTHON_CLIENT_MEM_FRACTION": fraction, "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
             "TF_FORCE_GPU_ALLOW_GROWTH": "true", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    return {**order, **{k: v for k, v in hints.items() if k not in user_env}}


class Fixed(NamedTuple):
    """What placing a replica reads and does not change, read once per placement transaction."""

    host: str  # this host's name
    capacity: list[HostCapacity]  # what may be handed out on it
    sizes: dict[str, Size]  # the instance types' sizes, by name
    reserved: dict[int, dict[str, int]]  # active prepaid instances: {user_id: {instance_type: count}}
    types: dict[str, dict[str, Any]]  # the instance type rows, by name
    cluster: list[HostCapacity]  # every host's (prepaid reservations are counted over all hosts)


class Placer:
    def __init__(self, store: Store, runtime: str, config: ReconcilerConfig,
                 inventory: Callable[[], HostInventory] | None = None) -> None:
        self.store, self.runtime, self.config = store, runtime, config
        self.inventory = inventory or read_inventory
        self.lock = threading.Lock()  # one placement at a time on this host
        self.host: HostInventory | None = None
        self._recorded_at = float("-inf")

    def record(self) -> HostInventory:
        """Read the inventory and write it to the store (``hosts``)."""
        inv = self.inventory()
        with self.store.begin() as conn:
            host_store.record(conn, inv.name, inv.cpus, inv.memory_mb, [g.as_dict() for g in inv.gpus],
                              self.runtime, inv.gpu_error)
        if self.host is None or self.host != inv:
            gpus = ", ".join(f"{g.index}: {g.model} ({g.memory_mb} MiB)" for g in inv.gpus) or inv.gpu_error or "none"
            log.info("host %s: %d CPUs, %d MiB memory, GPUs: %s", inv.name, inv.cpus, inv.memory_mb, gpus)
        self.host, self._recorded_at = inv, time.monotonic()
        return inv

    def refresh(self) -> None:
        """Record the inventory again when ``inventory_every_s`` has passed (the loop calls it each turn)."""
        if time.monotonic() - self._recorded_at < self.config.inventory_every_s:
            return
        try:
            with self.lock:
                self.record()
        except ArkserveError as exc:
            self._recorded_at = time.monotonic()
            log.warning("recording the host's inventory failed: %s", exc.message)

    def gpu_memory_mb(self, index: int) -> int:
        gpus = self.host.gpus if self.host else ()
        return next((g.memory_mb for g in gpus if g.index == index), 0)

    def assign(self, svc: ServiceRow, rep: ReplicaRow) -> str:
        """Place ``rep`` (its row updated and saved); ``""`` when placed, else why not (the row saved pending).

        Raises what the store raises for an unknown instance type (the caller fails the replica)."""
        got = self.assign_many([(svc, rep)])[0]
        if isinstance(got, ArkserveError):
            raise got
        return got

    def assign_many(self, wanted: list[tuple[ServiceRow, ReplicaRow]],
                    writes: PassWrites | None = None) -> list[str | ArkserveError]:
        """Place each replica in turn, under the lock and in one transaction (each counts the ones placed before
        it); per replica what :meth:`assign` returns, or the error it would raise. What holds capacity is read
        once (as placement's allocations) and kept up to date here; the rows are written together at the end:
        with ``writes`` (the pass's collected writes: the new replicas' pending rows) by its flush, in the same
        transaction."""
        out: list[str | ArkserveError] = []

        def place_all(conn: Connection) -> None:
            held, fixed = [allocation_of(r) for r in host_store.allocations(conn)], self._fixed(conn, host)
            changed: dict[str, ReplicaRow] = {}
            billing: dict[tuple[Any, ...], str | TemporaryError] = {}  # billing's answers in this transaction
            for svc, rep in wanted:
                held = [a for a in held if a.replica != rep.id]
                try:
                    out.append(self._assign(conn, svc, rep, held, fixed, changed, billing))
                except ArkserveError as exc:
                    out.append(exc)
            if writes is None:
                service_store.save_replicas(conn, list(changed.values()), routing_changed=False)
            else:
                for rep in changed.values():
                    writes.save(rep)

        with self.lock:
            host = self.host or self.record()
            if writes is None:
                with self.store.begin() as conn:
                    place_all(conn)
            else:
                writes.flush(first=place_all)
        return out

    def _assign(self, conn: Connection, svc: ServiceRow, rep: ReplicaRow, held: list[Allocation],
                fixed: Fixed, changed: dict[str, ReplicaRow],
                billing: dict[tuple[Any, ...], str | TemporaryError]) -> str:
        name = svc.spec.get("instance_type", "cpu.small")
        itype = fixed.types[name] if name in fixed.types else instance_types.get(conn, name)  # not there: NotFound
        try:
            mode = self._billing(conn, svc, itype["name"], held, billing)
            result = self._place(svc, rep, itype, mode, held, fixed)
        except TemporaryError as exc:  # e.g. InsufficientBalance: waits like a replica that does not fit
            result = None
            message = exc.message
        if isinstance(result, Placement):
            rep.node, rep.instance_type, rep.billing = result.host, itype["name"], mode
            rep.gpu_indices = ",".join(str(i) for i in result.gpu_indices)
            rep.gpu_share_mb = result.gpu_share_mb
            changed[rep.id] = rep
            held.append(Allocation(rep.id, svc.name, svc.owner_id, rep.node, rep.instance_type, size_of(itype),
                                   result.gpu_indices, result.gpu_share_mb, rep.billing))  # as allocations() has it
            return ""
        if result is not None:
            message = result.message
        if (rep.state, rep.last_error, rep.node) == ("pending", message, ""):
            return message  # still waiting for the same reason: nothing to write
        rep.node, rep.gpu_indices, rep.gpu_share_mb = "", "", 0
        rep.state, rep.last_error = "pending", message
        changed[rep.id] = rep
        return message

    @staticmethod
    def _billing(conn: Connection, svc: ServiceRow, itype: str, held: list[Allocation],
                 known: dict[tuple[Any, ...], str | TemporaryError]) -> str:
        """Billing's mode for the replica. Its answer depends on the owner, the type, the spec and the count
        already on prepaid instances, and on store rows placing does not change (prepaid instances, balance,
        prices): asked once per such key in a transaction, not once per replica."""
        on_prepaid = sum(1 for a in held if a.owner_id == svc.owner_id and a.instance_type == itype
                         and a.billing == "prepaid")
        key = (svc.owner_id, itype, id(svc.spec), on_prepaid)  # id: the spec object, alive for the transaction
        if key not in known:
            try:
                known[key] = admission.billing_mode(conn, svc.owner_id, itype, svc.spec, on_prepaid)
            except TemporaryError as exc:
                known[key] = exc
        answer = known[key]
        if isinstance(answer, TemporaryError):
            raise answer
        return answer

    def _fixed(self, conn: Connection, host: HostInventory) -> Fixed:
        every = [host_capacity(h, self.config.cpu_overcommit, self.config.memory_overcommit)
                 for h in host_store.list_all(conn)]
        capacity = [h for h in every if h.name == host.name]
        types = {t["name"]: t for t in instance_types.list_all(conn)}
        sizes = {name: size_of(t) for name, t in types.items()}
        return Fixed(host.name, capacity, sizes, admission.reserved(conn, time.time()), types, every)

    def _place(self, svc: ServiceRow, rep: ReplicaRow, itype: dict[str, Any], mode: str, held: list[Allocation],
               fixed: Fixed) -> Placement | Unfit:
        if self.runtime in CLUSTER_SCHEDULED:  # the cluster places the Pod; whole GPUs as nvidia.com/gpu
            return Placement(self.runtime)
        request = Request(rep.id, svc.name, svc.owner_id, itype["name"], size_of(itype), mode)
        # on this host only; reservations over all hosts: every host's capacity and what is held on each
        return place(request, fixed.capacity, held, fixed.reserved, fixed.sizes, fixed.cluster)
