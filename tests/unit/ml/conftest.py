"""Unit tests of the ml service: no server, no database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sanic import Sanic


@pytest.fixture(autouse=True)
def _fresh_app_registry() -> Iterator[None]:
    """Let each test build its own ``strata-ml`` app (Sanic registers apps by name)."""
    Sanic._app_registry.pop("strata-ml", None)
    yield
    Sanic._app_registry.pop("strata-ml", None)
