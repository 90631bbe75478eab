"""Validating a bulk-ingest body completely before anything is written.

The body is NDJSON (one data object per line) or a JSON array of data objects. Every
line is checked (valid JSON, then the rules of :mod:`services.ml.data`: an object, within
the document size limit, no NUL, not too deep, numbers it can keep); any failure is a
422 naming the line (NDJSON, 1-based) or the item (array, 0-based), and nothing reaches
the database. What is stored is the service's serialisation of each parsed document,
the same as a single create would store.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.common import problems
from services.common.jsonbody import JsonValueError, explain, loads
from services.common.problems import Problem
from services.ml.data import encode_document

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


def _document(value: Any, max_bytes: int) -> tuple[str, str | None]:
    """The document's text as stored, and why it cannot be stored (or None)."""
    encoded, reason = encode_document(value, max_bytes)
    return ("" if reason else encoded.decode()), reason


def _line(line: bytes, max_bytes: int) -> tuple[str, str | None]:
    if len(line) > max_bytes:  # before parsing: no need to read an oversized line
        return "", f"document exceeds {max_bytes} bytes"
    try:
        value = loads(line)
    except orjson.JSONDecodeError as exc:
        return "", f"not valid JSON: {explain(exc)}"
    except JsonValueError as exc:
        return "", f"cannot be read: {exc}"
    return _document(value, max_bytes)


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
        text, reason = _line(line, max_document_bytes)
        if reason is not None:
            errors.add(number, reason)
        out.append(text)
    errors.raise_if_any()
    return out


def _parse_array(body: bytes, max_documents: int, max_document_bytes: int) -> list[str]:
    try:
        items = loads(body)
    except orjson.JSONDecodeError as exc:
        raise problems.bad_json(f"request body is not valid JSON: {explain(exc)}") from None
    except JsonValueError as exc:
        raise problems.bad_json(f"request body cannot be read: {exc}") from None
    if not isinstance(items, list):
        raise problems.validation_failed(
            [{"loc": ["body"], "msg": "must be a JSON array of objects"}]
        )
    if len(items) > max_documents:
        raise _too_many(max_documents)
    out: list[str] = []
    errors = _Errors("item")
    for index, item in enumerate(items):
        text, reason = _document(item, max_document_bytes)
        if reason is not None:
            errors.add(index, reason)
        out.append(text)
    errors.raise_if_any()
    return out


def _too_many(limit: int) -> Problem:
    return Problem(413, "payload-too-large", f"a bulk request holds at most {limit} documents")
