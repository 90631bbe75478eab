"""Query-string rules every endpoint keeps: only the parameters it takes, each at most once.

A misspelt parameter (``?limt=1``) or one an endpoint does not support must not be
silently ignored: the client would believe it applied.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from services.common.problems import validation_failed


def check_query(given: Mapping[str, Sequence[Any]], allowed: Collection[str]) -> None:
    """422 ``validation-failed`` naming each unknown or repeated parameter."""
    errors: list[dict[str, Any]] = []
    for name, values in given.items():
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "no query parameters"
            msg = f"unknown query parameter; this endpoint takes {takes}"
            errors.append({"loc": ["query", name], "msg": msg})
        elif len(values) > 1:
            errors.append({"loc": ["query", name], "msg": "given more than once"})
    if errors:
        raise validation_failed(errors, "invalid query parameter")
