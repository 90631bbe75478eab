"""Validating a bulk-ingest body completely before anything is written.

The body is NDJSON (one data object per line) or a JSON array of data objects. Every
line is checked (valid JSON, an object, within the document size limit, storable in
JSONB); any failure is a 422 naming the line (NDJSON, 1-based) or the item (array,
0-based), and nothing reaches the database.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.common import problems
from services.common.problems import Problem

NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/ndjson"}
MAX_REPORTED = 20


class _Errors:
    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[dict[str, Any]] = []
        self.first = ""

    def add(self, where: int, msg: str) -> None:
        if not self.items:
            self.first = f"{self.what} {where}: {msg}"
        if len(self.items) < MAX_REPORTED:
            self.items.append({"loc": ["body", self.what, where], "msg": msg})

    def raise_if_any(self) -> None:
        if self.items:
            raise problems.validation_failed(self.items, detail=f"nothing written; {self.first}")


def _check(text: bytes, max_bytes: int) -> str | None:
    """Why one serialised document cannot be stored, or None."""
    if len(text) > max_bytes:
        return f"document exceeds {max_bytes} bytes"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg}"
    if not isinstance(value, dict):
        return "data must be a JSON object"
    if b"\\u0000" in text:  # JSONB cannot store NUL in strings; COPY would fail late
        return "strings must not contain NUL (\\u0000)"
    return None


def _media(content_type: str | None, body: bytes) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return "ndjson"
    if media == "application/json":
        return "array"
    if media == "":
        return "array" if body.lstrip()[:1] == b"[" else "ndjson"
    raise problems.unsupported_media_type("application/x-ndjson or application/json")


def parse_bulk(
    body: bytes, content_type: str | None, *, max_documents: int, max_document_bytes: int
) -> list[str]:
    """Every document of the body as JSON text, in order; raise on any bad line."""
    if not body.strip():
        raise problems.bad_json("request body is empty")
    if _media(content_type, body) == "array":
        return _parse_array(body, max_documents, max_document_bytes)
    out: list[str] = []
    errors = _Errors("line")
    for number, line in enumerate(body.split(b"\n"), start=1):
        line = line.strip()
        if not line:
            continue
        if len(out) >= max_documents:
            raise _too_many(max_documents)
        reason = _check(line, max_document_bytes)
        if reason is not None:
            errors.add(number, reason)
        out.append(line.decode() if reason is None else "")
    errors.raise_if_any()
    return out


def _parse_array(body: bytes, max_documents: int, max_document_bytes: int) -> list[str]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise problems.bad_json(f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise problems.validation_failed(
            [{"loc": ["body"], "msg": "must be a JSON array of objects"}]
        )
    if len(items) > max_documents:
        raise _too_many(max_documents)
    out: list[str] = []
    errors = _Errors("item")
    for index, item in enumerate(items):
        text = orjson.dumps(item)
        reason = _check(text, max_document_bytes)
        if reason is not None:
            errors.add(index, reason)
        out.append(text.decode() if reason is None else "")
    errors.raise_if_any()
    return out


def _too_many(limit: int) -> Problem:
    return Problem(413, "payload-too-large", f"a bulk request holds at most {limit} documents")
