"""Running the registry binary: ``arkserve registry`` (one of ``arkserve up --runtime docker``'s parts).

The command writes the configuration (``config.write``) and then *becomes* ``docker-registry serve``
(exec), so the supervisor's signals and restarts reach Distribution itself. ``missing_binary`` is
``up``'s check: without the Debian package ``docker-registry`` it says what to install and carries on
without images.

It starts read-only while ``run/registry.readonly`` exists and a garbage collection holds the lock; a marker
left by a collection that was killed (nobody holds the lock) is removed, and the registry starts writable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from arkserve.registry import config
from arkserve.settings import Settings

PACKAGE = "docker-registry"


def binary(settings: Settings) -> str | None:
    """The registry binary's path, or None when it is not installed."""
    b = settings.registry.binary
    if os.sep in b:
        return b if Path(b).is_file() and os.access(b, os.X_OK) else None
    return shutil.which(b)


def missing_binary(settings: Settings) -> str:
    """'' when the registry can run; else a sentence for ``up``'s output."""
    if binary(settings) is not None:
        return ""
    return (f"registry binary {settings.registry.binary} not found: images are off. Install the Debian package "
            f"`{PACKAGE}` (apt-get install {PACKAGE}) and restart to push and run images from the platform "
            "registry.")


def exec_registry(settings: Settings) -> None:
    """Write the configuration and replace this process with ``docker-registry serve <config>``."""
    path = binary(settings)
    if path is None:
        raise FileNotFoundError(missing_binary(settings))
    marker = config.readonly_marker(settings.data_dir)
    readonly = marker.exists()
    if readonly and not config.gc_running(settings.data_dir):
        marker.unlink(missing_ok=True)  # left by a garbage collection that did not end cleanly (killed)
        readonly = False
    cfg = config.write(settings, readonly=readonly)
    os.execv(path, [path, "serve", str(cfg)])  # noqa: S606 - our own configured binary
