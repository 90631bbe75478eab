"""Which currency codes the ledger accepts: ISO 4217, from the pinned ``iso4217`` package.

The package carries the maintenance agency's own table (list one), dated in its version
(``1.16.20260101``: the table published 2026-01-01); upgrading the pin follows the
standard. Only codes with a defined minor unit are accepted, since amounts are integers
in minor units: that leaves out the funds and metals codes with none (XAU, XDR, XTS, XXX...).
Existing accounts keep working if a later table withdraws their currency; only opening
new accounts checks this list.
"""

from __future__ import annotations

from functools import cache

from iso4217 import Currency
from iso4217 import __published__ as PUBLISHED  # noqa: N812 - a constant

__all__ = ["PUBLISHED", "active_codes", "is_active"]


@cache
def active_codes() -> frozenset[str]:
    """Every accepted code (three uppercase letters)."""
    return frozenset(c.code for c in Currency if c.exponent is not None)


def is_active(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency with minor units."""
    return code in active_codes()
