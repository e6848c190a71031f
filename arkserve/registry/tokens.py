"""Registry tokens: the key that signs them and the JWTs Distribution's ``auth.token`` accepts.

The platform creates an RSA key and a self-signed certificate for it once, in
``<data_dir>/registry-auth/`` (``token.key`` mode 0600, ``token.pem``). Distribution trusts
the certificate as its ``rootcertbundle``; each token carries it in the JWS ``x5c`` header,
which is how Distribution 2.8 finds the key (``registry/auth/token/token.go``). Claims follow
``docs/spec/auth/jwt.md``: ``iss``, ``sub``, ``aud`` (the registry's service name), ``exp``,
``nbf``, ``iat``, ``jti`` and ``access`` (``[{type, name, actions}]``). Signed RS256 with
``cryptography``; no JWT library is needed for the one format we produce.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from arkserve.auth.vault import write_secret_file

ISSUER = "arkserve"
SERVICE = "arkserve-registry"
PULL_USER = "ark-pull-token"  # the user name next to a replica's pull token in a runtime's pull credentials


@dataclass(frozen=True)
class Access:
    """One entry of a token's ``access`` claim (``repository:alice/app:pull,push``)."""

    type: str
    name: str
    actions: tuple[str, ...]

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(scope: str) -> Access | None:
    """``repository:alice/app:pull,push`` -> Access; None when it does not parse. The type may carry a class
    (``repository(plugin)``), which Distribution ignores for authorization, and so do we."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    kind = kind.split("(", 1)[0]
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


class Held(NamedTuple):
    """What a verified token holds."""

    subject: str
    access: list[Access]
    expires_at: int  # unix time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "registry-auth"


def cert_path(data_dir: Path) -> Path:
    return key_dir(data_dir) / "token.pem"


def ensure_signing_key(data_dir: Path) -> tuple[Path, Path]:
    """Create (once) the token signing key and its self-signed certificate; returns (key, cert) paths.

    Several parts may call this at their first start: the pair is written to a fresh directory that is then
    renamed into place, so every caller ends up with the one pair that won."""
    d = key_dir(data_dir)
    key_file, cert_file = d / "token.key", d / "token.pem"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    tmp = d.with_name(f"{d.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "arkserve"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "arkserve registry token issuer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    write_secret_file(tmp / key_file.name, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    (tmp / cert_file.name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    try:
        os.rename(tmp, d)
    except OSError:  # another part won the race (or an empty directory is in the way: take its place)
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            os.rename(tmp, d)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return key_file, cert_file


class TokenSigner:
    """Mints registry tokens with the data dir's key."""

    def __init__(self, key: rsa.RSAPrivateKey, cert: x509.Certificate, *, issuer: str = ISSUER,
                 service: str = SERVICE) -> None:
        self.key, self.issuer, self.service = key, issuer, service
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    @classmethod
    def from_data_dir(cls, data_dir: Path, *, create: bool = True) -> TokenSigner:
        """The signer of ``data_dir`` (creating its key on first use unless ``create`` is False:
        then a missing key raises ``FileNotFoundError``)."""
        if create:
            key_file, cert_file = ensure_signing_key(data_dir)
        else:
            key_file, cert_file = key_dir(data_dir) / "token.key", cert_path(data_dir)
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_file}: expected an RSA key")
        return cls(key, x509.load_pem_x509_certificate(cert_file.read_bytes()))

    def mint(self, subject: str, access: Iterable[Access], ttl_s: int = 300, now: float | None = None) -> str:
        t = int(time.time() if now is None else now)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": t + ttl_s, "nbf": t - 1,
                  "iat": t, "jti": secrets.token_hex(16),
                  "access": [{"type": a.type, "name": a.name, "actions": list(a.actions)} for a in access]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str, now: float | None = None) -> Held | None:
        """The subject, access and expiry of a token this key signed, for this issuer and service, within its
        validity window; None for anything else (a bad signature, another issuer, expired, malformed)."""
        try:
            head, body, sig = token.split(".")
            self.key.public_key().verify(_unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
            t = time.time() if now is None else now
            if (header.get("alg") != "RS256" or claims.get("iss") != self.issuer or claims.get("aud") != self.service
                    or not claims["nbf"] <= t < claims["exp"]):
                return None
            access = [Access(str(a["type"]), str(a["name"]), tuple(str(x) for x in a["actions"]))
                      for a in claims["access"]]
            return Held(str(claims["sub"]), access, int(claims["exp"]))
        except (ValueError, KeyError, TypeError, InvalidSignature):
            return None
