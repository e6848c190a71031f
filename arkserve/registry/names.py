"""Image references and repository names as the platform registry sees them.

A repository is ``<namespace>/<path>``: the namespace is a user name, or ``ark-public`` for the
base images admins publish. Names follow Distribution's grammar (lower-case components joined by
``/``). A reference ``127.0.0.1:7782/alice/app:v1`` names the registry host, the repository and a
tag (or ``@sha256:…`` digest). The short form ``app:v1`` means the caller's own ``<user>/app:v1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def in_registry(image: str, address: str) -> Reference | None:
    """The reference when ``image`` lives in the platform registry at ``address``; else None."""
    ref = parse_reference(image)
    return ref if address and ref.host == address else None


def resolve_short(image: str, address: str, username: str) -> str:
    """``app:v1`` (no registry, no namespace) -> ``<address>/<username>/app:v1``; anything else unchanged."""
    ref = parse_reference(image)
    if ref.host or "/" in ref.repository or not address:
        return image
    return str(Reference(address, f"{username}/{ref.repository}", ref.tag or "latest", ref.digest))
