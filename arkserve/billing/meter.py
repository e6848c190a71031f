"""The meter: the I/O shell around :mod:`arkserve.billing.metering`, run as a thread of the reconciler's process.

Each pass reads replica rows from the store, extends every run's segment to now and writes the ledger entries for
exactly the newly covered seconds, all in ONE transaction: killed between (or during) passes, it neither loses nor
repeats a second — the next pass starts from what the store holds. A pass first meters up to each prepaid end passed
since the last one and renews or expires what ended there (period after period, when the meter was down longer),
then meters to now — runs moving between prepaid and pay-as-you-go as instances end, are bought or are freed — and
applies the balance rule (grace, then pay-as-you-go services scaled to 0), with events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from arkserve.billing import accounts, admission, ledger, prepaid
from arkserve.billing.metering import (
    PAYG,
    PREPAID,
    RUNNING,
    Observed,
    Plan,
    Segment,
    as_of,
    demote,
    from_micro,
    plan_pass,
    promote,
    to_micro,
)
from arkserve.errors import ArkserveError
from arkserve.settings import BillingSettings
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.db import bump
from arkserve.store.tables import billing_accounts, billing_runs, billing_stops, instance_types, replicas, services

log = logging.getLogger("arkserve.billing")
_SEGMENT_FIELDS = ("replica_id", "started_at", "billing", "user_id", "service", "instance_type",
                   "price_micro_per_hour", "from_at", "seconds", "amount_micro", "ended")


def observe(conn: Connection) -> list[Observed]:
    """Every replica row that has started, with its owner, type, billing and price."""
    prices = {n: to_micro(p) for n, p in conn.execute(select(instance_types.c.name, instance_types.c.price_per_hour))}
    extra = [c for c in (replicas.c.get("instance_type"), replicas.c.get("billing")) if c is not None]
    q = (select(replicas.c.id, replicas.c.state, replicas.c.started_at, replicas.c.updated_at, services.c.name,
                services.c.owner_id, services.c.spec, *extra)
         .join(services, services.c.id == replicas.c.service_id).where(replicas.c.started_at.is_not(None)))
    out = []
    for row in conn.execute(q):
        m = row._mapping
        spec = m["spec"] or {}
        itype = str(m.get("instance_type") or spec.get("instance_type", ""))
        running = m["state"] in RUNNING
        out.append(Observed(m["id"], float(m["started_at"]), int(m["owner_id"]), m["name"], itype,
                            str(m.get("billing") or PAYG), prices.get(itype, 0), running,
                            None if running else float(m["updated_at"]),
                            spec_billing=str(spec.get("billing") or "auto")))
    for stop in conn.execute(select(billing_stops)):  # rows deleted while running, with the instant they stopped
        s = stop._mapping
        out.append(Observed(s["replica_id"], float(s["started_at"]), int(s["user_id"]), s["service"],
                            s["instance_type"], s["billing"], prices.get(s["instance_type"], 0), False,
                            float(s["stopped_at"]), final=True))
    return out


def _segments(conn: Connection, replica_ids: set[str]) -> tuple[list[Segment], list[Segment]]:
    """Open segments, and the closed ones of the replicas seen (closed segments of gone replicas stay unread: the
    table grows, a pass does not)."""
    c = billing_runs.c
    fields = [c[k] for k in _SEGMENT_FIELDS]
    open_ = [Segment(**r._mapping) for r in conn.execute(select(*fields).where(c.ended.is_(False)))]
    closed: list[Segment] = []
    ids = sorted(replica_ids)
    for i in range(0, len(ids), 500):
        q = select(*fields).where(c.ended.is_(True), c.replica_id.in_(ids[i:i + 500]))
        closed += [Segment(**r._mapping) for r in conn.execute(q)]
    return open_, closed


def placed_prepaid(conn: Connection) -> dict[tuple[int, str], int]:
    """Replicas placement put on a prepaid instance that are not running runs yet (or any more): they hold it,
    ``{(owner, type): count}``."""
    r = replicas.c
    q = (select(services.c.owner_id, r.instance_type, func.count()).join(services, services.c.id == r.service_id)
         .where(r.node != "", r.billing == PREPAID, r.started_at.is_(None) | r.state.not_in(sorted(RUNNING)))
         .group_by(services.c.owner_id, r.instance_type))
    return {(int(u), str(t)): int(n) for u, t, n in conn.execute(q)}


def mark_prepaid(conn: Connection, runs: Iterable[Observed]) -> None:
    """Promoted runs' replica rows say ``billing=prepaid``, so that placement counts them on the instance."""
    r, changed = replicas.c, set()
    for o in runs:
        row = conn.execute(select(r.service_id).where(r.id == o.replica_id, r.started_at == o.started_at,
                                                      r.billing != PREPAID)).first()
        if row is not None:
            conn.execute(update(replicas).where(r.id == o.replica_id).values(billing=PREPAID))
            changed.add(int(row[0]))
    if changed:
        service_store.touch(conn, *sorted(changed))


def apply(conn: Connection, plan: Plan, now: float) -> None:
    """Write a pass's plan: segments upserted, ledger entries for the new seconds (the caller's transaction)."""
    c = billing_runs.c
    for seg, charge in plan.upserts:
        values = {k: getattr(seg, k) for k in _SEGMENT_FIELDS}
        where = (c.replica_id == seg.replica_id) & (c.started_at == seg.started_at) & (c.billing == seg.billing)
        if conn.execute(update(billing_runs).where(where).values(updated_at=now, **values)).rowcount == 0:
            conn.execute(insert(billing_runs).values(updated_at=now, **values))
        if charge is not None:
            ledger.add(conn, seg.user_id, "usage", -charge.amount_micro, time=charge.period_end, service=seg.service,
                       instance_type=seg.instance_type, replica=seg.replica_id, billing=seg.mode,
                       seconds=charge.seconds, period_start=charge.period_start, period_end=charge.period_end)
    for seg in plan.closed:
        conn.execute(update(billing_runs).where(
            (c.replica_id == seg.replica_id) & (c.started_at == seg.started_at) & (c.billing == seg.billing))
            .values(ended=True, updated_at=now))


def meter_pass(conn: Connection, now: float, *, reserved_at: float | None = None) -> Plan:
    """One metering pass inside the caller's transaction (prepaid instances counted as active at ``reserved_at``,
    default ``now``): runs beyond their owner's instances demoted to pay-as-you-go, pay-as-you-go runs promoted
    onto free ones (their rows updated), every run's segment extended."""
    active = prepaid.active_counts(conn, now if reserved_at is None else reserved_at)
    reserved = {(u, t): n for u, types in active.items() for t, n in types.items()}
    demoted = demote(as_of(observe(conn), now), reserved)
    observed = promote(demoted, reserved, placed_prepaid(conn))
    mark_prepaid(conn, set(observed) - set(demoted))
    open_, closed = _segments(conn, {o.replica_id for o in observed})
    plan = plan_pass(now, observed, open_, closed)
    apply(conn, plan, now)
    for replica_id, started_at in [(o.replica_id, o.started_at) for o in observed if o.final]:  # billed: done with
        conn.execute(delete(billing_stops).where((billing_stops.c.replica_id == replica_id)
                                                 & (billing_stops.c.started_at == started_at)))
    return plan


def _owner_services(conn: Connection, user_id: int) -> list[service_store.ServiceRow]:
    return [s for s in service_store.list_all(conn, user_id) if not s.deleting]


def settle_prepaid(conn: Connection, now: float) -> None:
    """Renew (auto-renew and enough balance) or expire prepaid instances whose period ended by ``now``."""
    for row in prepaid.due(conn, now):
        what = f"prepaid #{row['id']} ({row['count']}x {row['instance_type']})"
        if row["auto_renew"] and prepaid.renew(conn, row, float(row["ends_at"])):
            for svc in _owner_services(conn, row["user_id"]):
                if svc.spec.get("instance_type") == row["instance_type"]:
                    event_store.record(conn, svc.name, "prepaid", f"{what} renewed for another {row['period']}")
            continue
        prepaid.expire(conn, row["id"])
        why = "expired" + (" (auto-renew: the balance was short)" if row["auto_renew"] else "")
        for svc in _owner_services(conn, row["user_id"]):
            if svc.spec.get("instance_type") != row["instance_type"]:
                continue
            autoscaled = bool(svc.spec.get("autoscale"))
            if svc.spec.get("on_prepaid_expiry") == "stop" and (svc.replicas > 0 or autoscaled):
                # stopped means stopped: the autoscaler would start it again on the next request (or its minimum)
                spec = {**svc.spec, "autoscale": None} if autoscaled else None
                service_store.update_desired(conn, svc, spec=spec, replica_count=0)
                event_store.record(conn, svc.name, "scaled", f"{what} {why}: scaled {svc.replicas} -> 0 "
                                                             "(on_prepaid_expiry: stop)"
                                   + ("; autoscaling turned off" if autoscaled else ""))
            else:
                event_store.record(conn, svc.name, "prepaid", f"{what} {why}: its replicas continue as "
                                                              "pay-as-you-go")


def catch_up(conn: Connection, now: float) -> None:
    """Each prepaid end passed by ``now``, in order: meter up to it (its runs billed prepaid until that instant),
    then renew or expire what ends there. A renewed period that has ended too (the meter was down longer than a
    period) is settled the same way, so its runs are billed prepaid over every period renewed and pay-as-you-go
    only past the last renewal the balance allowed."""
    while due := prepaid.due(conn, now):
        end = min(float(row["ends_at"]) for row in due)
        meter_pass(conn, end, reserved_at=end - 0.001)
        settle_prepaid(conn, end)


def enforce_balances(conn: Connection, settings: BillingSettings, now: float) -> None:
    """Users at/below the overdraft limit with pay-as-you-go runs: grace, then their services scaled to 0."""
    if not settings.enforce:
        return
    c = billing_runs.c
    payg: dict[int, set[str]] = {}
    for user_id, service in conn.execute(select(c.user_id, c.service).where(
            c.ended.is_(False), c.billing.startswith(PAYG), c.price_micro_per_hour > 0)):
        payg.setdefault(int(user_id), set()).add(str(service))
    limit = to_micro(settings.overdraft_limit)
    for (user_id,) in conn.execute(select(billing_accounts.c.user_id).where(billing_accounts.c.low_since.is_not(None))):
        if user_id not in payg:  # no pay-as-you-go runs left: no grace running (a later one starts afresh)
            accounts.set_low_since(conn, user_id, None, now)
    for user_id, names in payg.items():
        account = accounts.get(conn, user_id)
        have = ledger.balance(conn, user_id)
        if have > limit:
            if account["low_since"] is not None:
                accounts.set_low_since(conn, user_id, None, now)
            continue
        shown = f"{from_micro(have):.2f} {settings.currency}"
        if account["low_since"] is None:
            accounts.set_low_since(conn, user_id, now, now)
            for name in sorted(names):
                event_store.record(conn, name, "balance", f"insufficient balance ({shown}): pay-as-you-go replicas "
                                                          f"are scaled to 0 in {settings.grace_s:g} s unless topped up")
        elif now - account["low_since"] >= settings.grace_s:
            for svc in _owner_services(conn, user_id):
                if svc.name in names and svc.replicas > 0:
                    service_store.update_desired(conn, svc, replica_count=0)
                    event_store.record(conn, svc.name, "scaled", f"insufficient balance ({shown}) after the "
                                                                 f"{settings.grace_s:g} s grace: scaled "
                                                                 f"{svc.replicas} -> 0 (nothing deleted)")


class Meter:
    """Meter passes every ``settings.meter_interval_s`` on a thread; ``clock`` is replaceable for tests."""

    def __init__(self, store: Any, settings: BillingSettings, clock: Callable[[], float] = time.time) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def run_pass(self) -> None:
        """One pass, one transaction: catch up with the prepaid ends passed since the last pass, meter up to now,
        apply the balance rule."""
        now = self.clock()
        with self.store.begin() as conn:
            bump(conn, "billing")  # the lock row first: one pass at a time across reconcilers (PostgreSQL)
            catch_up(conn, now)
            meter_pass(conn, now)
            enforce_balances(conn, self.settings, now)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run_pass()
            except ArkserveError as exc:
                log.warning("meter pass skipped: %s", exc.message)
            except Exception:
                log.exception("meter pass failed; will retry")
            self.stop_event.wait(self.settings.meter_interval_s)

    def start(self) -> Meter:
        admission.configure(self.settings)
        self.thread = threading.Thread(target=self.run, name="ark-meter", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, then meter once more (the seconds up to now are billed before replicas go away)."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        try:
            self.run_pass()
        except Exception:
            log.exception("final meter pass failed")
