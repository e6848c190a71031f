"""The local certificate authority: a CA and a server certificate for the gateway, made on first start.

Clients trust the gateway with ``REQUESTS_CA_BUNDLE=<data_dir>/tls/ca.pem`` and nothing else.
Real certificates (``--tls-cert/--tls-key``) bypass all of this.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from arkserve.auth.vault import write_secret_file


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "arkserve"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def ensure_local_ca(data_dir: Path, base_domain: str) -> TlsFiles:
    """Create (once) ``tls/ca.pem`` and ``tls/server.pem`` + ``server.key`` for 127.0.0.1, localhost and
    ``*.base_domain``. Existing files are kept, so clients keep trusting the same CA across restarts."""
    d = data_dir / "tls"
    files = TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key")
    if files.ca_cert.exists() and files.cert.exists() and files.key.exists():
        return files
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("arkserve local CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if base_domain and base_domain != "localhost":
        names += [x509.DNSName(base_domain), x509.DNSName(f"*.{base_domain}")]
    else:
        names.append(x509.DNSName("*.localhost"))
    cert = (x509.CertificateBuilder().subject_name(_name("arkserve gateway")).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write_secret_file(d / "ca.key", _pem_key(ca_key))
    write_secret_file(files.key, _pem_key(key))
    files.cert.write_text(cert.public_bytes(serialization.Encoding.PEM).decode())
    files.ca_cert.write_text(ca.public_bytes(serialization.Encoding.PEM).decode())
    return files


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
