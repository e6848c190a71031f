"""Envelope encryption of stored secrets (access-key SKs).

Each secret is sealed with its own random 256-bit data key (AES-GCM); the data key is
sealed with the master key (the key-encryption key). The master key lives in a 0600
file in the data dir, or comes from ``ARKSERVE_MASTER_KEY`` (base64 of 32 bytes).
Rotating the master key only re-wraps the data keys (:func:`rewrap`); the sealed
secrets themselves are untouched.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arkserve.errors import ArkserveError, ValidationFailed

MASTER_KEY_FILE = "master.key"
_NONCE = 12


class VaultError(ArkserveError):
    code = "VaultError"


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)

    @property
    def kek_id(self) -> str:
        return hashlib.sha256(b"arkserve-kek:" + self.key).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_b64(cls, text: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ValidationFailed("master key must be base64 of 32 bytes", field="ARKSERVE_MASTER_KEY")
        return cls(raw)

    def to_b64(self) -> str:
        return base64.b64encode(self.key).decode()


def write_secret_file(path: Path, text: str) -> None:
    """Create or replace ``path`` with mode 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_master_key(data_dir: Path, env_value: str | None = None, *, create: bool = True) -> MasterKey:
    """The master key from ``env_value`` (ARKSERVE_MASTER_KEY) or ``<data_dir>/master.key``."""
    if env_value:
        return MasterKey.from_b64(env_value)
    path = data_dir / MASTER_KEY_FILE
    if path.exists():
        return MasterKey.from_b64(path.read_text())
    if not create:
        raise VaultError(f"no master key: {path} is missing and ARKSERVE_MASTER_KEY is not set")
    key = MasterKey.generate()
    write_secret_file(path, key.to_b64() + "\n")
    return key


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError):
        raise VaultError("stored secret cannot be decrypted with this master key") from None


@dataclass(frozen=True)
class Sealed:
    secret: bytes
    dek_wrapped: bytes
    kek_id: str


def seal(master: MasterKey, plaintext: bytes, context: str) -> Sealed:
    """Encrypt ``plaintext``; ``context`` (e.g. the AK) is bound as associated data."""
    dek = AESGCM.generate_key(bit_length=256)
    aad = context.encode()
    return Sealed(_seal(dek, plaintext, aad), _seal(master.key, dek, aad), master.kek_id)


def unseal(master: MasterKey, sealed: Sealed, context: str) -> bytes:
    if sealed.kek_id != master.kek_id:
        raise VaultError("secret was wrapped by another master key "
                         "(finish a rotation with `arkserve master-key rotate`)")
    aad = context.encode()
    return _open(_open(master.key, sealed.dek_wrapped, aad), sealed.secret, aad)


def rewrap(old: MasterKey, new: MasterKey, sealed: Sealed, context: str) -> Sealed:
    aad = context.encode()
    dek = _open(old.key, sealed.dek_wrapped, aad)
    return Sealed(sealed.secret, _seal(new.key, dek, aad), new.kek_id)
