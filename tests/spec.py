"""The shared wire contract (``../shared/spec`` beside the repository, as CI lays it out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "spec"


def vectors() -> list[dict[str, Any]]:
    """The reference client's signed requests. Missing ``../shared`` is an error, not a skip."""
    path = SPEC_DIR / "ark-hmac-vectors.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the tests need ../shared beside the repository")
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data
