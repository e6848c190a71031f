"""Access keys: issuing AK/SK pairs, the per-user limit, revealing and master-key rotation.

An SK is standard base64 (with padding) of 32 random bytes, as the signature spec
demands; it is stored only sealed under the master key (``arkserve.auth.vault``).
"""

from __future__ import annotations

import base64
import secrets
import string

from sqlalchemy import Connection

from arkserve.auth.vault import MasterKey, rewrap, seal, unseal
from arkserve.errors import LimitExceeded
from arkserve.store import keys as key_store

MAX_KEYS_PER_USER = 5
_AK_ALPHABET = string.ascii_uppercase + string.digits


def generate_access_key() -> str:
    return "AK" + "".join(secrets.choice(_AK_ALPHABET) for _ in range(18))


def generate_secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def issue(conn: Connection, master: MasterKey, user_id: int, description: str = "") -> tuple[str, str]:
    """Create a key pair for ``user_id``; returns (AK, SK). The SK is shown once here, then sealed."""
    if key_store.count_for(conn, user_id) >= MAX_KEYS_PER_USER:
        raise LimitExceeded(f"a user may hold at most {MAX_KEYS_PER_USER} access keys; delete one first",
                            code="KeyLimitExceeded")
    ak, sk = generate_access_key(), generate_secret_key()
    key_store.insert_key(conn, ak, user_id, seal(master, sk.encode(), ak), description)
    return ak, sk


def reveal(conn: Connection, master: MasterKey, access_key: str) -> str:
    stored = key_store.get(conn, access_key)
    return unseal(master, stored.sealed, access_key).decode()


def rotate_master(conn: Connection, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every stored data key from ``old`` to ``new`` in the caller's transaction."""
    count = 0
    for stored in key_store.list_keys(conn):
        if stored.sealed.kek_id == new.kek_id:
            continue
        key_store.replace_sealed(conn, stored.access_key, rewrap(old, new, stored.sealed, stored.access_key))
        count += 1
    return count
