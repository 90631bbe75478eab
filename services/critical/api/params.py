"""Query, header and cursor parameters: every malformed value is a 4xx naming it.

Cursors are opaque to clients but come back from them, so their decoded contents are
checked as strictly as any input (types, ranges, time zone) before they reach SQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import request

from services.common.cursor import decode_cursor, invalid_cursor
from services.common.etag import if_match_version
from services.common.limits import INT64_MAX
from services.common.operation import Param
from services.common.problems import Problem, validation_failed

_UUID = {"type": "string", "format": "uuid"}
PAGE = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
    Param("cursor", "query", {"type": "string"}, description="next_cursor of the previous page"),
)
# Printable ASCII without leading or trailing spaces (HTTP strips those); the service
# also takes other printable characters, which not every HTTP stack carries intact.
_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[!-~]([ -~]*[!-~])?$",
}
MAX_KEY_LENGTH = 255
_KEY_TEXT = "1..255 printable characters; a replay with the same key and body gets the first answer"
KEY = Param("Idempotency-Key", "header", _KEY_SCHEMA, description=_KEY_TEXT)
REQUIRED_KEY = Param(KEY.name, "header", _KEY_SCHEMA, required=True, description=_KEY_TEXT)
OWNER = Param("owner", "query", {"type": "string"}, description="only this owner's accounts")
ACCOUNT = Param("account_id", "path", _UUID, required=True)
TRANSFER = Param("transfer_id", "path", _UUID, required=True)
IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string", "pattern": '^ *(\\*|(W/)?"?[0-9]{1,10}"?) *$'},
    description='the account version: 3, "3" or W/"3" (ASCII digits), or * for any',
)


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
        raise invalid_cursor()
    try:
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC: PostgreSQL refuses offsets Python accepts (up to 24 hours).
        return when.astimezone(UTC), uuid.UUID(last)
    except (ValueError, OverflowError):
        raise invalid_cursor() from None


def entries_before(cursor: str | None) -> int | None:
    """The entry id an entries page resumes before."""
    if not cursor:
        return None
    before: Any = decode_cursor(cursor, ("i",))["i"]
    if type(before) is not int or not 1 <= before <= INT64_MAX:
        raise invalid_cursor()
    return before


def if_match() -> int | None:
    """The ``If-Match`` version (``3``, ``"3"``, ``W/"3"``); None when absent or ``*``."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    version = if_match_version(raw, max_digits=10)
    if version is None:
        raise validation_failed(
            [{"loc": ["header", "If-Match"], "msg": "must be an account version (digits)"}],
            "invalid If-Match header",
        )
    return version


def required_idempotency_key() -> str:
    """The ``Idempotency-Key`` header; 400 ``idempotency-key-missing`` when absent."""
    key = idempotency_key()
    if key is None:
        raise Problem(400, "idempotency-key-missing", f"the {KEY.name} header is required")
    return key


def idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header, or None; 422 when malformed.

    An empty value is a malformed key, not a missing one: the header was sent.
    """
    raw = request.headers.get(KEY.name)
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not raw.isprintable():
        raise validation_failed(
            [
                {
                    "loc": ["header", KEY.name],
                    "msg": f"must be 1..{MAX_KEY_LENGTH} printable characters",
                }
            ],
            "invalid Idempotency-Key",
        )
    return raw
