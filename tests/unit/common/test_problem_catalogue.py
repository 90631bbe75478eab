"""Every problem type the ml and cache code can raise is listed, with its status, in the
service's OpenAPI document (whose Problem.type then admits exactly those slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.cache.api.errors import PROBLEM_TYPES as CACHE_TYPES
from services.cache.api.errors import PROBLEMS as CACHE_REFUSALS
from services.cache.settings import CacheSettings
from services.cache.spec import ENDPOINTS as CACHE_ENDPOINTS
from services.cache.spec import INFO as CACHE_INFO
from services.common.openapi import build_openapi
from services.ml.api import ENDPOINTS as ML_ENDPOINTS
from services.ml.api.errors import PROBLEM_TYPES as ML_TYPES
from services.ml.api.errors import PROBLEMS as ML_REFUSALS
from services.ml.settings import MlSettings
from services.ml.spec import INFO as ML_INFO

ROOT = Path(__file__).resolve().parents[3] / "services"
RAISED = re.compile(r'(?:Problem|__init__)\(\s*([0-9]{3}|[\w.]+),\s*"([a-z][a-z-]*)"', re.S)
# Recorded in metrics and logs when the client went away; never sent, so not documented.
NEVER_SENT = {"client-closed-request"}


def raised(*packages: str) -> dict[str, set[str]]:
    """slug -> the status literals it is raised with, in the given packages."""
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for status, slug in RAISED.findall(path.read_text()):
                found.setdefault(slug, set()).add(status)
    return found


# The store's refusals, mapped to problems in one table at the edge.
REFUSALS = {"ml": ML_REFUSALS, "cache": CACHE_REFUSALS}
# Raised by common code the service never calls (the cache has no cursors).
UNUSED = {"ml": set(), "cache": {"invalid-cursor"}}


@pytest.mark.parametrize(("service", "types"), [("ml", ML_TYPES), ("cache", CACHE_TYPES)])
def test_every_raised_slug_is_documented_with_its_status(
    service: str, types: dict[str, tuple[int, str]]
) -> None:
    found = raised(service, "common")
    for status, slug, _ in REFUSALS[service].values():
        found.setdefault(slug, set()).add(str(status))
    assert set(found) - set(types) - NEVER_SENT - UNUSED[service] == set()
    for slug, statuses in found.items():
        literal = {int(s) for s in statuses if s.isdigit()}
        if slug in types:
            assert literal <= {types[slug][0]}, (slug, literal)
    assert set(types) <= set(found), "documented but never raised"


def test_the_documents_admit_exactly_those_types() -> None:
    for document, types in (
        (
            build_openapi(
                ML_INFO, MlSettings(environment="development"), (e.operation for e in ML_ENDPOINTS)
            ),
            ML_TYPES,
        ),
        (
            build_openapi(
                CACHE_INFO,
                CacheSettings(environment="development"),
                (e.operation for e in CACHE_ENDPOINTS),
            ),
            CACHE_TYPES,
        ),
    ):
        enum = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
        assert enum == sorted(f"urn:strata:problem:{slug}" for slug in types)
