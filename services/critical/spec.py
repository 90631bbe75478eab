"""What the critical OpenAPI document says about itself; its endpoints declare the rest."""

from __future__ import annotations

from services.common.openapi import ServiceInfo
from services.critical.api.declare import HEADER
from services.critical.problem_types import PROBLEM_TYPES

INFO = ServiceInfo(
    title="Strata critical — accounts and transfers",
    description="A ledger in integer minor units. Errors are RFC 9457 problem details "
    "(application/problem+json); every response carries X-Request-ID.",
    problem_types=PROBLEM_TYPES,
    every_response={"X-Request-ID": HEADER},
)
