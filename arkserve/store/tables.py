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

# Monotonic counters; "routing" moves whenever anything the gateway snapshot depends on changes.
versions = Table(
    "versions", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# One row per gateway worker: the routing version it has loaded, and when it last said so. The reconciler
# stops a draining replica once every live worker has loaded a snapshot without it.
gateway_acks = Table(
    "gateway_acks", metadata,
    Column("worker", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("seen_at", Float, nullable=False),
)
