"""Opaque keyset-pagination cursors and the shared ``limit`` rule.

A cursor is URL-safe base64 of a small JSON object holding the last row's sort key.
It is opaque to clients; a cursor that does not decode is a 400 ``invalid-cursor``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from services.common.problems import Problem, validation_failed

Row = TypeVar("Row")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(key: dict[str, Any]) -> str:
    """Encode a sort key as an opaque cursor."""
    return base64.urlsafe_b64encode(orjson.dumps(key)).rstrip(b"=").decode()


def invalid_cursor(detail: str = "cursor is not valid") -> Problem:
    """400 ``invalid-cursor``: not a cursor this listing issued."""
    return Problem(400, "invalid-cursor", detail)


def page(
    rows: Sequence[Row], limit: int, key: Callable[[Row], dict[str, Any]]
) -> tuple[Sequence[Row], str | None]:
    """The first ``limit`` of ``rows`` (fetched with ``limit + 1``), and the cursor after
    the last of them when there are more."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    return shown, encode_cursor(key(shown[-1]))


def decode_cursor(cursor: str, required: tuple[str, ...]) -> dict[str, Any]:
    """Decode a cursor; it must be an object holding every ``required`` key."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid_cursor() from None
    if not isinstance(value, dict) or any(k not in value for k in required):
        raise invalid_cursor()
    return value


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Parse ``?limit=`` (1..maximum); anything else is a 422 naming the parameter.

    ASCII digits only: ``int()`` would also take ``"٣"``, ``"+5"``, ``" 5"`` and ``"1_0"``.
    """
    if raw is None or raw == "":
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    if not 1 <= value <= maximum:
        raise validation_failed(
            [{"loc": ["query", "limit"], "msg": f"must be an integer in 1..{maximum}"}],
            "invalid query parameter",
        )
    return value
