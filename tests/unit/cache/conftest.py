"""Unit tests of the cache service: no servers, no network beyond a refused loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sanic import Sanic

from services.cache.settings import CacheSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STRATA_CACHE_* from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("STRATA_CACHE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings() -> CacheSettings:
    """Development settings pointing at a port nothing listens on."""
    return CacheSettings(environment="development", redis_url="redis://127.0.0.1:9/0")


@pytest.fixture
def sanic_test_mode() -> Iterator[None]:
    """Let several apps with the same name exist in one process."""
    previous = Sanic.test_mode
    Sanic.test_mode = True
    yield
    Sanic.test_mode = previous
