"""The environment a replica's app gets from its spec, plus what the local runtime's app directory implies.

On the local runtime a service command runs with the ``PATH`` of the platform's own process, so ``python3``
is whichever one comes first there. An app directory holding a virtual environment (``<app>/.venv``) gets
that environment first on ``PATH`` and as ``VIRTUAL_ENV``, so ``python3 app.py`` and console scripts use
the app's own interpreter and packages. The app directory is at the same path inside the local runtime's
sandbox, so the path holds there too. A ``PATH`` the service sets itself wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def replica_env(runtime: str, image: str, env: Mapping[str, str]) -> dict[str, str]:
    out = dict(env)
    if runtime != "local" or "PATH" in out:
        return out
    venv = Path(image.removeprefix("dir:")).expanduser().resolve() / ".venv"
    if (venv / "bin").is_dir():
        out["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        out.setdefault("VIRTUAL_ENV", str(venv))
    return out
