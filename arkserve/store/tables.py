"""Table definitions: the single source of truth the migrations are written from."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # admin | user
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

access_keys = Table(
    "access_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("access_key", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_sealed", LargeBinary, nullable=False),  # AES-GCM(nonce|ct) under the data key
    Column("dek_wrapped", LargeBinary, nullable=False),  # data key sealed under the master key
    Column("kek_id", String(32), nullable=False),  # fingerprint of the master key that wrapped dek
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", String(200), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex of the cookie value
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

instance_types = Table(
    "instance_types", metadata,
    Column("name", String(64), primary_key=True),
    Column("cpus", Float, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpus", Integer, nullable=False, default=0),
    Column("gpu_model", String(64), nullable=False, default=""),
    Column("price_per_hour", Float, nullable=False, default=0.0),
    Column("billing", String(16), nullable=False, default="payg"),  # payg | reserved
    Column("description", String(200), nullable=False, default=""),
    # a share of one GPU's memory (0 < f < 1, with gpus = 0): replicas are packed onto a GPU (arkserve/capacity)
    Column("gpu_fraction", Float, nullable=False, default=0.0, server_default="0"),
)

services = Table(
    "services", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("spec", JSON, nullable=False),
    Column("replicas", Integer, nullable=False),
    Column("generation", Integer, nullable=False, default=1),
    Column("gateway_port", Integer, nullable=True, unique=True),
    Column("status", String(32), nullable=False, default="pending"),
    Column("reason", String(64), nullable=False, default=""),
    Column("message", Text, nullable=False, default=""),
    Column("deleting", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # a canary (docs/canary.md): the spec of a second revision served beside this one, and its share of requests
    Column("canary_spec", JSON, nullable=True),
    Column("canary_weight", Integer, nullable=False, default=0, server_default="0"),  # percent, 1-99 while a canary
    Index("ix_services_owner_name", "owner_id", "name"),  # a user's list pages (store/service_pages.py)
    Index("ix_services_status", "status"),  # the list's status filter and its count
)

# Gateway ports of deleted services, in the order they were released (store/services.py, _free_port): new
# services get the ports above the highest one ever handed out, and only once those run out the least recently
# released one, so a new service meets a deleted one's old clients as late as possible.
released_ports = Table(
    "released_ports", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("port", Integer, nullable=False, unique=True),
)

# The change feed: per service, the "changes" version of the last write to its desired state, status or replica
# rows; the reconciler and the gateway read what moved since they last looked (WHERE seq > seen). Apart from
# services (no foreign key) so that marking a change never locks the service row (store/services.py, touch).
service_changes = Table(
    "service_changes", metadata,
    Column("service_id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False, index=True),
)

replicas = Table(
    "replicas", metadata,
    Column("id", String(16), primary_key=True),
    Column("service_id", Integer, ForeignKey("services.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("revision", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("host", String(255), nullable=False, default=""),
    Column("port", Integer, nullable=True),
    Column("runtime_id", String(128), nullable=False, default=""),
    Column("started_at", Float, nullable=True),
    Column("ready_at", Float, nullable=True),
    Column("restarts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
    Column("image_digest", String(80), nullable=False, default=""),  # what the runtime pulled (sha256:...)
    # placement (arkserve/capacity): the host it holds capacity on ("" = holds none), as which instance type,
    # which GPUs ("0,1"), its share of a GPU's memory (fractional types), and how it is billed (payg | prepaid)
    Column("node", String(255), nullable=False, default="", server_default=""),
    Column("instance_type", String(64), nullable=False, default="", server_default=""),
    Column("gpu_indices", String(64), nullable=False, default="", server_default=""),
    Column("gpu_share_mb", Integer, nullable=False, default=0, server_default="0"),
    Column("billing", String(16), nullable=False, default="payg", server_default="payg"),
)

# Hosts the reconcilers run on and what they have (arkserve/capacity/inventory.py), kept current by each.
hosts = Table(
    "hosts", metadata,
    Column("name", String(255), primary_key=True),
    Column("cpus", Float, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("gpus", JSON, nullable=False),  # [{"index", "uuid", "model", "memory_mb"}]
    Column("runtime", String(32), nullable=False, default=""),
    Column("gpu_error", Text, nullable=False, default=""),  # why NVML read no GPU ("" when it did, or none)
    Column("updated_at", Float, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("service", String(63), nullable=False),
    Column("replica", String(16), nullable=False, default=""),
    Column("time", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_events_service_time", "service", "time"),
)

# Security events for admins (login failures and throttling), kept retention_days.
security_events = Table(
    "security_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("username", String(64), nullable=False, default=""),
    Column("client", String(64), nullable=False, default=""),
    Column("message", Text, nullable=False),
    Index("ix_security_events_time", "time"),
)

request_log = Table(
    "request_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("service", String(63), nullable=False),
    Column("replica", String(16), nullable=False, default=""),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    Column("access_key", String(64), nullable=False, default=""),
    Column("client", String(64), nullable=False, default=""),
    Column("request_id", String(128), nullable=False, default=""),
    Column("revision", String(16), nullable=False, default="", server_default=""),  # of the replica that served it
    Index("ix_request_log_service_time", "service", "time"),
)

# The model market: a model (name, card, publisher, visibility) and its immutable versions. A version's manifest
# lists its files with their SHA-256 (the blobs under <data_dir>/models/blobs); digest = SHA-256 over the manifest.
models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("description", Text, nullable=False, default=""),  # Markdown
    Column("task", String(64), nullable=False, default=""),
    Column("framework", String(64), nullable=False, default=""),
    Column("license", String(64), nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", String(64), nullable=False),
    Column("digest", String(80), nullable=False),  # "sha256:<hex>" over the canonical manifest
    Column("manifest", JSON, nullable=False),  # [{"path", "size", "sha256"}], sorted by path
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

# The platform registry (issue 13): a repository's owner and visibility (its tags and blobs live in the registry
# itself); a repository without a row is private. image_quotas: a user's registry storage when not the default.
image_repositories = Table(
    "image_repositories", metadata,
    Column("name", String(255), primary_key=True),  # "<namespace>/<path>", as in the registry
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("public", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

image_quotas = Table(
    "image_quotas", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("quota_bytes", BigInteger, nullable=False),
)

# The network disk: a user's quota when an admin set one (otherwise the disk.quota_gib setting applies).
disk_quotas = Table(
    "disk_quotas", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("limit_bytes", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Monotonic counters; "routing" moves whenever anything the gateway snapshot depends on changes, "changes" with
# every services.change_seq, "keys" with access keys and users, "removals" when a service row is deleted.
versions = Table(
    "versions", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Leader leases (issue 17, arkserve/leases): one row per lease ("reconciler"). Whoever holds an unexpired row acts;
# ``token`` (the fencing token) grows by one each time the lease changes hands. Times are the database's clock.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False, default=""),  # "" once released
    Column("token", BigInteger, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# One row per gateway worker: the routing version it has loaded, and when it last said so. The reconciler
# stops a draining replica once every live worker has loaded a snapshot without it.
gateway_acks = Table(
    "gateway_acks", metadata,
    Column("worker", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("seen_at", Float, nullable=False),
)

# Autoscaling (issue 18, docs/autoscaling.md): each gateway worker's load per service (requests in flight and
# queued), upserted about once a second while non-zero or changed; the autoscaler sums the fresh rows.
gateway_load = Table(
    "gateway_load", metadata,
    Column("worker", String(128), primary_key=True),
    Column("service", String(63), primary_key=True),
    Column("inflight", Integer, nullable=False),
    Column("queued", Integer, nullable=False),
    Column("reported_at", Float, nullable=False),
)

# ------------------------------------------------------------------------------------------------ billing (issue 15)
# The ledger is append-only: money in (top-ups, amount > 0) and out (usage, prepaid purchases, amount < 0), in
# integer micro-units of the currency. A user's balance is the sum of their entries; corrections are new entries.
billing_ledger = Table(
    "billing_ledger", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("time", Float, nullable=False),
    Column("kind", String(16), nullable=False),  # usage | topup | prepaid | renewal | adjustment
    Column("amount_micro", BigInteger, nullable=False),
    Column("service", String(63), nullable=False, default=""),
    Column("instance_type", String(64), nullable=False, default=""),
    Column("replica", String(16), nullable=False, default=""),
    Column("billing", String(16), nullable=False, default=""),  # usage: payg | prepaid
    Column("seconds", Integer, nullable=False, default=0),  # usage: the replica-seconds this entry covers
    Column("period_start", Float, nullable=True),
    Column("period_end", Float, nullable=True),
    Column("note", Text, nullable=False, default=""),
    Index("ix_billing_ledger_user_time", "user_id", "time"),
)

# One row per metered run segment: a replica run (replica id + its started_at) billed one way (payg | prepaid).
# A meter pass extends ``seconds``/``amount_micro`` and writes the ledger entry for the new seconds in one
# transaction, so a crash between passes neither loses nor repeats a second.
billing_runs = Table(
    "billing_runs", metadata,
    Column("replica_id", String(16), primary_key=True),
    Column("started_at", Float, primary_key=True),
    Column("billing", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("service", String(63), nullable=False),
    Column("instance_type", String(64), nullable=False),
    Column("price_micro_per_hour", BigInteger, nullable=False),
    Column("from_at", Float, nullable=False),  # where this segment's seconds start
    Column("seconds", Integer, nullable=False),
    Column("amount_micro", BigInteger, nullable=False),
    Column("ended", Boolean, nullable=False, default=False),
    Column("updated_at", Float, nullable=False),
)

# A replica row deleted while it ran (drained, scaled down, stopped at shutdown): when it stopped, written in the
# deleting transaction, so the meter bills the run to that instant (not to its last look) and bills runs that
# began and ended between two passes; the meter deletes the row in the pass that closes the run.
billing_stops = Table(
    "billing_stops", metadata,
    Column("replica_id", String(16), primary_key=True),
    Column("started_at", Float, primary_key=True),
    Column("stopped_at", Float, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("service", String(63), nullable=False),
    Column("instance_type", String(64), nullable=False),
    Column("billing", String(16), nullable=False),
)

prepaid_instances = Table(
    "prepaid_instances", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("instance_type", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("period", String(8), nullable=False),  # month | year
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("auto_renew", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),  # active | expired
    Column("price_micro", BigInteger, nullable=False),  # paid per period, all instances together
    Column("created_at", Float, nullable=False),
)

# Per-user limits an admin set (null: unlimited) and the balance state the meter keeps (grace start).
billing_accounts = Table(
    "billing_accounts", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("max_replicas", Integer, nullable=True),
    Column("max_gpus", Integer, nullable=True),
    Column("max_prepaid", Integer, nullable=True),
    Column("low_since", Float, nullable=True),  # balance at/below the overdraft limit since (grace running)
    Column("updated_at", Float, nullable=False),
)

# Asynchronous inference (issue 18, store/async_requests.py): one row per accepted request, from intake through its
# result and its callback; a dispatcher claims a row with a lease (lease_owner, lease_until) so a killed dispatcher's
# claims go back to the queue when the lease runs out. Bodies over a bound live in files under <data_dir>/async/.
async_requests = Table(
    "async_requests", metadata,
    Column("id", String(40), primary_key=True),
    Column("service", String(63), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),  # null: a public service
    Column("access_key", String(64), nullable=False, default=""),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("headers", JSON, nullable=False),  # [[name, value], ...] to send to the app
    Column("body", LargeBinary, nullable=True),  # small bodies inline; else body_file
    Column("body_file", Text, nullable=True),
    Column("body_size", BigInteger, nullable=False, default=0),
    Column("callback_url", Text, nullable=True),
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),  # a queued row is not claimed before this (retry backoff)
    Column("lease_owner", String(64), nullable=False, default=""),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),  # finished rows (and their files) are purged after this
    Column("error", Text, nullable=True),
    Column("result_status", Integer, nullable=True),
    Column("result_headers", JSON, nullable=True),
    Column("result_body", LargeBinary, nullable=True),
    Column("result_file", Text, nullable=True),
    Column("result_size", BigInteger, nullable=True),
    Column("callback_state", String(16), nullable=False, default="none"),  # none | pending | delivered | failed
    Column("callback_attempts", Integer, nullable=False, default=0),
    Column("callback_next_at", Float, nullable=False, default=0.0),
    Index("ix_async_requests_status_next", "status", "next_at"),
    Index("ix_async_requests_callback", "callback_state", "callback_next_at"),
    Index("ix_async_requests_expires", "expires_at"),
)
