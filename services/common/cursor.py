"""Opaque keyset-pagination cursors and the shared ``limit`` rule.

A cursor is URL-safe base64 of a small JSON object holding the last row's sort key.
It is opaque to clients; a cursor that does not decode is a 400 ``invalid-cursor``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from services.common.problems import Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(key: dict[str, Any]) -> str:
    """Encode a sort key as an opaque cursor."""
    return base64.urlsafe_b64encode(orjson.dumps(key)).rstrip(b"=").decode()


def decode_cursor(cursor: str, required: tuple[str, ...]) -> dict[str, Any]:
    """Decode a cursor; it must be an object holding every ``required`` key."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise Problem(400, "invalid-cursor", "cursor is not valid") from None
    if not isinstance(value, dict) or any(k not in value for k in required):
        raise Problem(400, "invalid-cursor", "cursor is not valid")
    return value


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """Parse ``?limit=`` (1..maximum); anything else is a 422 naming the parameter.

    ASCII digits only: ``int()`` would also take ``"٣"``, ``"+5"``, ``" 5"`` and ``"1_0"``.
    """
    if raw is None or raw == "":
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    if not 1 <= value <= maximum:
        raise Problem(
            422,
            "validation-failed",
            "invalid query parameter",
            errors=[{"loc": ["query", "limit"], "msg": f"must be an integer in 1..{maximum}"}],
        )
    return value
