"""Components a test needs from the machine (PostgreSQL, dockerd, Chromium, Debian's PyTorch, nginx and
wrk, Node.js): missing, the test skips and says how to get it; CI sets ``ARKSERVE_REQUIRE_*=1`` so the same
gap fails the run instead of passing it quietly."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(env: str, reason: str) -> NoReturn:
    """Skip for ``reason``, or fail when ``env`` is ``1`` (the component is required there)."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} ({env}=1 requires it)")
    pytest.skip(f"{reason} (with {env}=1, as in CI, this fails instead)")
