"""The problem-type catalogue is complete, and the OpenAPI document is built from it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.common.openapi import build_openapi
from services.critical.api import ENDPOINTS
from services.critical.problem_types import PROBLEM_TYPES, PROBLEMS
from services.critical.settings import CriticalSettings
from services.critical.spec import INFO
from services.critical.worker import _SLUGS

ROOT = Path(__file__).resolve().parents[3] / "services"
RAISED = re.compile(r'Problem\(\s*(\d{3}),\s*"([a-z0-9-]+)"')


def _raised() -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for package in ("common", "critical"):
        for path in (ROOT / package).rglob("*.py"):
            found |= {(int(s), slug) for s, slug in RAISED.findall(path.read_text())}
    found |= {(status, slug) for status, slug in _SLUGS.items()}
    found |= {(r.status, r.slug) for r in PROBLEMS.values()}  # ledger refusals, at the edge
    return found


def document() -> dict[str, Any]:
    """The served document (as ``create_app`` builds it)."""
    settings = CriticalSettings(environment="development")
    return build_openapi(INFO, settings, (e.operation for e in ENDPOINTS))


def test_every_problem_the_code_raises_is_catalogued_with_its_status() -> None:
    raised = _raised()
    assert len(raised) > 20  # the scan sees the code
    assert {(status, slug) for slug, (status, _) in PROBLEM_TYPES.items()} >= raised


def test_every_catalogued_problem_is_raised_somewhere() -> None:
    assert {slug for _, slug in _raised()} == set(PROBLEM_TYPES)


def test_the_catalogue_imports_nothing_from_the_http_layer() -> None:
    # The endpoint declarations read PROBLEM_TYPES while api/ is being imported: a table
    # that imported api/ back would be a loop (a fresh interpreter shows it; this one has
    # api/ loaded already).
    probe = (
        "import sys, services.critical.problem_types; "
        "print(sorted(m for m in sys.modules if m.startswith('services.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "services.critical.problem_types" in loaded
    assert "services.critical.api" not in loaded


def test_each_operation_documents_exactly_its_problem_types() -> None:
    doc = document()
    for endpoint in ENDPOINTS:
        op = endpoint.operation
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        for slug in op.problems:
            status = str(PROBLEM_TYPES[slug][0])
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert f"urn:strata:problem:{slug}" in schema["properties"]["type"]["enum"]
            assert f"`{slug}`" in responses[status]["description"]
        if op.scopes:
            assert {"401", "403", "503"} <= set(responses), op.path


def test_health_endpoints_are_documented() -> None:
    paths = document()["paths"]
    assert {"/livez", "/readyz", "/metrics", "/openapi.json"} <= set(paths)
    readyz = paths["/readyz"]["get"]["responses"]
    assert set(readyz["503"]["content"]) == {"application/json"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_no_pydantic_only_keyword_leaks_into_the_schemas() -> None:
    # gt/le are pydantic's names; JSON Schema's are exclusiveMinimum/maximum. A validator
    # placed before Field() once left them raw, and the fuzzer then sent amount 0.
    schemas = document()["components"]["schemas"]
    assert not _keys(schemas) & {"gt", "ge", "lt", "le", "strict"}
    amount = schemas["Movement"]["properties"]["amount"]
    assert (amount["exclusiveMinimum"], amount["maximum"]) == (0, 2**63 - 1)
