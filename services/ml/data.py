"""What a document's ``data`` may be: the rules every write path applies before storing.

Create, replace, the result of a merge patch, and every line or item of a bulk ingest go
through :func:`encode_document`, so a document that is stored can always be served
back by every read path:

- a JSON object of at most ``MAX_DOCUMENT_BYTES`` once serialised (413 on single
  writes, a 422 naming the line or item in a bulk ingest);
- no NUL character in any string or key (JSONB cannot store it);
- at most :data:`~services.common.jsonbody.MAX_DEPTH` levels of nested arrays/objects;
- numbers (the rule of :mod:`services.common.jsonbody`): within a double's range;
  integers are kept exactly, whatever their size within it; a number with a fraction or
  an exponent is an IEEE 754 double. PostgreSQL stores every number as ``numeric`` and
  every read path sends the text PostgreSQL prints, so a document reads the same on
  every endpoint (in plain decimal notation: ``1e3`` reads back as ``1000``).

What is stored is the service's own serialisation of the parsed value (also for NDJSON
lines), so the same document sent through any write path is stored identically.
"""

from __future__ import annotations

from typing import Any

from services.common.jsonbody import MAX_DEPTH, JsonValueError, dumps_value, too_deep
from services.common.problems import Problem
from services.ml.params import has_nul, invalid


def encode_document(data: Any, max_bytes: int) -> tuple[bytes, str | None]:
    """``data`` serialised, and why it cannot be stored as a document (None when it can)."""
    if not isinstance(data, dict):
        return b"", "data must be a JSON object"
    try:
        encoded = dumps_value(data)
    except JsonValueError:  # nested beyond what can even be serialised
        return b"", f"data must not nest deeper than {MAX_DEPTH} levels"
    if len(encoded) > max_bytes:
        return encoded, f"document exceeds {max_bytes} bytes"
    if has_nul(encoded):
        return encoded, "strings must not contain NUL (\\u0000)"
    if too_deep(data, encoded):
        return encoded, f"data must not nest deeper than {MAX_DEPTH} levels"
    return encoded, None


def checked_document(data: Any, max_bytes: int) -> bytes:
    """``data`` serialised, or the problem of a single-document write (413 size, else 422)."""
    encoded, reason = encode_document(data, max_bytes)
    if reason is None:
        return encoded
    if len(encoded) > max_bytes:
        raise Problem(413, "payload-too-large", f"document data exceeds {max_bytes} bytes")
    raise invalid(["body", "data"], reason)
