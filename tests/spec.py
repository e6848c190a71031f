"""The wire contract the repository carries: ``docs/spec/ark-hmac.md`` and its vectors beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[1] / "docs" / "spec"


def vectors() -> list[dict[str, Any]]:
    """The reference client's signed requests (``docs/spec/ark-hmac-vectors.json``)."""
    path = SPEC_DIR / "ark-hmac-vectors.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data
