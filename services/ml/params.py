"""Parsing and validating what clients put in paths, query strings and headers.

Pure functions (no I/O): each raises a 422 ``validation-failed`` problem naming the
parameter, so routes stay thin and the rules are unit-tested in isolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.common import problems
from services.common.cursor import decode_cursor, encode_cursor
from services.common.problems import Problem

COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_FIELD_SEGMENT = re.compile(r"^[^.,\s]{1,128}$")
MAX_FIELDS = 64
MAX_FIELD_DEPTH = 16

#: A projection: each key maps to None (take the whole value) or to a nested projection.
FieldTree = dict[str, "FieldTree | None"]


def invalid(loc: list[str | int], msg: str) -> Problem:
    """422 naming one parameter."""
    return problems.validation_failed([{"loc": loc, "msg": msg}])


def collection_name(name: str) -> str:
    """A collection name as the contract allows it."""
    if not COLLECTION_NAME.match(name):
        raise invalid(["path", "name"], "must match ^[a-z][a-z0-9_-]{0,62}$")
    return name


def document_id(value: str, loc: tuple[str, str] = ("path", "id")) -> str:
    """A document id: 1..128 of letters, digits, ``.``, ``_``, ``:``, ``-``."""
    if not DOCUMENT_ID.match(value):
        raise invalid(list(loc), "must match ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    return value


def json_filter(raw: str | None) -> dict[str, Any] | None:
    """``?filter=``: a JSON object used for containment (``data @> filter``)."""
    if raw is None or raw == "":
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid(["query", "filter"], "must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid(["query", "filter"], "must be a JSON object")
    if "\\u0000" in raw:
        raise invalid(["query", "filter"], "must not contain NUL characters")
    return value


def timestamp(raw: str | None, name: str) -> datetime | None:
    """An ISO 8601 timestamp with a UTC offset (``Z`` allowed)."""
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid(["query", name], "must be an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        raise invalid(["query", name], "must carry a UTC offset")
    return value


def fields(raw: str | None) -> FieldTree | None:
    """``?fields=a,b.c`` as a tree; a whole key wins over its sub-paths."""
    if raw is None or raw == "":
        return None
    paths = [p.strip() for p in raw.split(",")]
    if len(paths) > MAX_FIELDS:
        raise invalid(["query", "fields"], f"at most {MAX_FIELDS} fields")
    tree: FieldTree = {}
    for path in paths:
        segments = path.split(".")
        if len(segments) > MAX_FIELD_DEPTH or not all(_FIELD_SEGMENT.match(s) for s in segments):
            raise invalid(["query", "fields"], "must be comma-separated dotted paths")
        node = tree
        for segment in segments[:-1]:
            child = node.setdefault(segment, {})
            if child is None:  # the whole parent is already selected
                break
            node = child
        else:
            node[segments[-1]] = None
    return tree


def if_match(raw: str | None) -> int | None:
    """``If-Match: <version>`` (a quoted or weak ETag form is accepted too)."""
    if raw is None:
        return None
    value = raw.strip()
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        raise invalid(["header", "If-Match"], "must be a document version (integer)")
    return int(value)


def positive_int(raw: str | None, name: str, default: int, maximum: int) -> int:
    """An integer query parameter in 1..maximum."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise invalid(["query", name], f"must be an integer in 1..{maximum}")
    return int(raw)


@dataclass(frozen=True)
class DocumentQuery:
    """What selects and shapes documents in a listing or an export."""

    filter: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    fields: FieldTree | None = None
    after: tuple[datetime, str] | None = None  # keyset position (created_at, id)


def document_cursor(raw: str | None) -> tuple[datetime, str] | None:
    """Decode a listing cursor into its (created_at, id) keyset position."""
    if raw is None or raw == "":
        return None
    key = decode_cursor(raw, ("t", "i"))
    try:
        return datetime.fromisoformat(str(key["t"])), str(key["i"])
    except ValueError:
        raise Problem(400, "invalid-cursor", "cursor is not valid") from None


def next_document_cursor(created_at: datetime, doc_id: str) -> str:
    """The cursor that continues after this row."""
    return encode_cursor({"t": created_at.isoformat(), "i": doc_id})


def check_document_size(data: Any, max_bytes: int) -> None:
    """413 when a document's serialised data is over the limit; 422 for NUL in strings."""
    encoded = orjson.dumps(data)
    if len(encoded) > max_bytes:
        raise Problem(413, "payload-too-large", f"document data exceeds {max_bytes} bytes")
    if b"\\u0000" in encoded:  # JSONB cannot store NUL characters in strings
        raise invalid(["body", "data"], "strings must not contain NUL (\\u0000)")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes a key."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
