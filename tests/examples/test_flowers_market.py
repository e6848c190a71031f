"""The flowers walkthrough's model-market variant (``FLOWERS_MODEL=market run.sh local``): the weights are published
as the public model flowers-resnet34@1, the app folder has no weights, the replica reads them from the mount at
/ark/models and answers exactly as the baked-in variant does.

Needs Debian's python3 with torch (ARKSERVE_REQUIRE_FLOWERS=1 turns the skip into a failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.flowers_support import FLOWERS, require_debian_torch
from tests.examples.test_flowers_walkthrough import check_output

pytestmark = pytest.mark.slow


def test_walkthrough_with_the_model_from_the_market_on_the_local_runtime() -> None:
    require_debian_torch()
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKSERVE_")}
    env |= {"FLOWERS_PLATFORM": "own", "FLOWERS_MODEL": "market", "ARKSERVE_BIN": str(venv_bin / "arkserve"),
            "ARKSERVE_PYTHON": sys.executable}
    done = subprocess.run([str(FLOWERS / "run.sh"), "local"], env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "published flowers-resnet34@1: sha256:" in out and "3 files" in out, out[-3000:]
    check_output(out)
