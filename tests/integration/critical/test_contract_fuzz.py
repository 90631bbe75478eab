"""The critical service against its own OpenAPI document: schemathesis and the auth matrix.

Both read the document from the running server, so every operation it declares is
exercised, and an operation added later is covered without editing this file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.critical.conftest import ALL
from tests.support.authmatrix import LABELS, matrix_failures
from tests.support.fuzz import MIN_CASES, run_schemathesis
from tests.support.process import ServiceProcess

SCOPES = ALL


def test_schemathesis_finds_nothing(
    gunicorn: ServiceProcess, make_token: Callable[..., str], tmp_path: Path
) -> None:
    """>= 500 generated cases, fixed seed, every operation: no 5xx, no off-contract answer."""
    result = run_schemathesis(
        gunicorn.base_url, make_token("critical", *SCOPES, ttl=3600), tmp_path
    )
    assert result.generated >= MIN_CASES, result.describe()
    assert result.failures == 0, result.describe()
    assert result.exit_code == 0, result.describe()


@pytest.mark.parametrize("label", LABELS)
def test_auth_matrix(gunicorn: ServiceProcess, label: str) -> None:
    """Every protected operation answers this credential as the matrix demands."""
    assert matrix_failures(gunicorn.base_url, "critical", label) == []
