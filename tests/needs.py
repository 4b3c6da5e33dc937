"""What a test does when a service or binary it needs is missing."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str) -> None:
    """Skip, or fail in CI (``FAILFIRST_REQUIRE_SERVICES=1``), where a skip would hide
    that nothing ran."""
    if os.environ.get("FAILFIRST_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (FAILFIRST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
