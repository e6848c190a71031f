"""Which user a Docker replica runs as: the image's own ``USER`` when that is not root, else nobody (65534).

"Not root" is decided as Docker would resolve it: a numeric user is read as a number (``0``, ``00``, ``+0``
are root), and a name is looked up in the image's own ``/etc/passwd`` (an image may call uid 0 ``toor``).
The lookup copies ``/etc/passwd`` out of a container that is created and removed, never started; its answer
is remembered per image id and name. A name the image does not list runs as nobody too (Docker would refuse to
start it).
"""

from __future__ import annotations

import io
import re
import tarfile
import threading
from typing import Any

import docker.errors

NOBODY = "65534:65534"
_NUMERIC = re.compile(r"[+-]?[0-9]+")
_known: dict[tuple[str, str], int | None] = {}
_lock = threading.Lock()


def run_as(client: Any, image: str) -> str:
    """The ``user`` to run a container of ``image`` with (``client``: a docker SDK client)."""
    img = client.images.get(image)
    user = str((img.attrs.get("Config") or {}).get("User") or "")
    name = user.split(":")[0]
    if not name:
        return NOBODY
    uid = int(name) if _NUMERIC.fullmatch(name) else _uid_of(client, img.id, name)
    return user if uid is not None and uid > 0 else NOBODY


def _uid_of(client: Any, image_id: str, name: str) -> int | None:
    with _lock:
        if (image_id, name) in _known:
            return _known[(image_id, name)]
    uid = passwd_uid(_passwd(client, image_id), name)
    with _lock:
        _known[(image_id, name)] = uid
    return uid


def passwd_uid(passwd: bytes, name: str) -> int | None:
    """The uid ``passwd`` (an /etc/passwd file) gives ``name``, or None."""
    for line in passwd.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and _NUMERIC.fullmatch(fields[2]):
            return int(fields[2])
    return None


def _passwd(client: Any, image_id: str) -> bytes:
    """The image's /etc/passwd, or b'' (none, or not a plain file)."""
    container = client.containers.create(image_id, command=["/nonexistent"], entrypoint=[],
                                         labels={"arkserve.io/purpose": "user-lookup"})
    try:
        try:
            stream, _ = container.get_archive("/etc/passwd")
        except docker.errors.NotFound:  # no /etc/passwd: the name is nobody's
            return b""
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            f = tar.extractfile(member) if member is not None else None
            return f.read(1 << 20) if f is not None else b""
    finally:
        container.remove(force=True)
