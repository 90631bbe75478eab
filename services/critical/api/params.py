"""Query, header and cursor parameters: every malformed value is a 4xx naming it.

Cursors are opaque to clients but come back from them, so their decoded contents are
checked as strictly as any input (types, ranges, time zone) before they reach SQL.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import request

from services.common.cursor import decode_cursor
from services.common.problems import Problem, validation_failed

INT64_MAX = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
_VERSION = re.compile(r"[0-9]{1,10}")


def _invalid_cursor() -> Problem:
    return Problem(400, "invalid-cursor", "cursor is not valid")


def query_text(name: str) -> str | None:
    """A text query parameter, or None; 422 naming it when it holds NUL (U+0000)."""
    value = request.args.get(name)
    if value is not None and "\x00" in value:
        raise validation_failed(
            [{"loc": ["query", name], "msg": "must not contain the NUL character (U+0000)"}],
            "invalid query parameter",
        )
    return value


def accounts_after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (created_at, id) an accounts page resumes after."""
    if not cursor:
        return None
    key = decode_cursor(cursor, ("c", "i"))
    created, last = key["c"], key["i"]
    if not isinstance(created, str) or not isinstance(last, str):
        raise _invalid_cursor()
    try:
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC: PostgreSQL refuses offsets Python accepts (up to 24 hours).
        return when.astimezone(UTC), uuid.UUID(last)
    except (ValueError, OverflowError):
        raise _invalid_cursor() from None


def entries_before(cursor: str | None) -> int | None:
    """The entry id an entries page resumes before."""
    if not cursor:
        return None
    before: Any = decode_cursor(cursor, ("i",))["i"]
    if type(before) is not int or not 1 <= before <= INT64_MAX:
        raise _invalid_cursor()
    return before


def if_match() -> int | None:
    """The ``If-Match`` version (``3``, ``"3"``, ``W/"3"``); None when absent or ``*``."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not _VERSION.fullmatch(value):
        raise validation_failed(
            [{"loc": ["header", "If-Match"], "msg": "must be an account version (digits)"}],
            "invalid If-Match header",
        )
    return int(value)
