"""What the CLI tests that run arkserve for real share: the ``env`` of a private data dir and ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_daemon import _env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    e = _env(tmp_path)
    yield e
    with contextlib.suppress(OSError, ValueError, KeyError):  # a failed test must not leave `up` running
        os.kill(json.loads((tmp_path / "data" / "run" / "up.json").read_text())["pid"], signal.SIGKILL)
