"""Image references and repository names as the platform registry sees them.

A repository is ``<namespace>/<path>``: the namespace is a user name, or ``ark-public`` for the
base images admins publish. Names follow Distribution's grammar (lower-case components joined by
``/``). A reference ``127.0.0.1:7782/alice/app:v1`` names the registry host, the repository and a
tag (or ``@sha256:…`` digest). The short form ``app:v1`` means the caller's own ``<user>/app:v1``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, replace

PUBLIC_NAMESPACE = "ark-public"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})+$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    host: str  # "" when the reference names no registry
    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        out = f"{self.host}/{self.repository}" if self.host else self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def namespace(self) -> str:
        return self.repository.split("/", 1)[0]


def _is_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def parse_reference(ref: str) -> Reference:
    """Split ``[host/]repo[:tag][@digest]``; no validation of the repository grammar (see ``valid_repository``)."""
    rest, _, digest = ref.partition("@")
    host = ""
    first, sep, remainder = rest.partition("/")
    if sep and _is_host(first):
        host, rest = first, remainder
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, ""
    return Reference(host, name, tag, digest)


def valid_repository(name: str) -> bool:
    return len(name) <= 255 and REPOSITORY_RE.match(name) is not None


def _endpoint(name: str) -> tuple[str, str]:
    """``Host.:port`` -> ``("host", "port")``, ``[::1]:7782`` -> ``("::1", "7782")``; the port '' when none."""
    if name.startswith("["):
        host, _, rest = name[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif name.count(":") > 1:  # an unbracketed IPv6 listen address (``registry.host: "::"``)
        host, _, port = name.rpartition(":")
    else:
        host, _, port = name.partition(":")
    return host.lower().rstrip("."), port


def _ports(port: str) -> set[str]:
    """The ports a host without one is reached at (https, then http for an insecure registry)."""
    return {port} if port else {"443", "80"}


_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or ":" in host:
        return None
    try:  # the forms the C resolver also takes for IPv4: 127.1, 2130706433, 0x7f.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _this_machine(host: str) -> bool:
    """A name of the machine itself: localhost (and the usual /etc/hosts aliases), its host name, any loopback
    or unspecified address in any spelling (``127.1``, ``0x7f000001``, ``[0:0::1]``, ``[::ffff:127.0.0.1]``)."""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost") or host == socket.gethostname().lower():
        return True
    ip = _ip(host)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def names_registry(host: str, address: str, listen: str = "") -> bool:
    """Whether the reference host ``host`` names the platform registry, published as ``address`` and listening
    on ``listen`` (``registry.host:registry.port``): either of them (the host part in any case, a trailing dot
    or not, no port meaning 443 or 80), or any name of this machine (``localhost``, ``127.0.0.1``, ``[::1]``,
    ...) with one of their ports. Naming more than the registry only puts the pull-rights check on it."""
    if not host or not address:
        return False
    name, port = _endpoint(host)
    ports: set[str] = set()
    for known in (address, listen):
        if known:
            known_name, known_port = _endpoint(known)
            if name == known_name and _ports(port) & _ports(known_port):
                return True
            ports |= _ports(known_port)
    return _this_machine(name) and bool(_ports(port) & ports)


def in_registry(image: str, address: str, listen: str = "") -> Reference | None:
    """The reference when ``image`` lives in the platform registry at ``address`` (by any of its names, see
    :func:`names_registry`); else None."""
    ref = parse_reference(image)
    first, sep, rest = image.partition("/")
    if not ref.host and sep and first != first.lower():  # Docker reads an upper-case first part as a host
        ref = replace(parse_reference(rest), host=first)
    return ref if names_registry(ref.host, address, listen) else None


def resolve_short(image: str, address: str, username: str) -> str:
    """``app:v1`` (no registry, no namespace) -> ``<address>/<username>/app:v1``; anything else unchanged."""
    ref = parse_reference(image)
    if ref.host or "/" in ref.repository or not address:
        return image
    return str(Reference(address, f"{username}/{ref.repository}", ref.tag or "latest", ref.digest))
