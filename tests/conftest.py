"""Shared fixtures: tokens for any service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.auth import mint_token
from services.common.settings import DEV_JWT_SECRET

TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_token() -> TokenFactory:
    """Mint a development HS256 token: ``make_token("critical", "accounts:read", ...)``."""

    def make(
        service: str,
        *scopes: str,
        subject: str = "tester",
        ttl: int = 600,
        audience: str | None = None,
        key: str = DEV_JWT_SECRET,
    ) -> str:
        return mint_token(
            key=key,
            audience=audience or f"strata-{service}",
            scopes=scopes,
            subject=subject,
            ttl=ttl,
        )

    return make
