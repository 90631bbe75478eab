"""Reading JSON request bodies the same way in every framework."""

from __future__ import annotations

from typing import Any

import orjson

from services.common.problems import Problem, bad_json


def parse_json(body: bytes | None, content_type: str | None = None) -> Any:
    """Parse a JSON body; 415 for a non-JSON content type, 400 for unparseable bytes."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise Problem(415, "unsupported-media-type", "expected application/json")
    if not body:
        raise bad_json("request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_json(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from None


def dumps(value: Any) -> bytes:
    """Serialise a response body (orjson: fast, UTF-8, handles datetimes and UUIDs)."""
    return orjson.dumps(value)
