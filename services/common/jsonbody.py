"""Reading and writing JSON the same way in every framework, with every integer exact.

orjson is fast but reads an integer outside [-2**63, 2**64 - 1] as a float (silently
rounded) and refuses to write one. Strata keeps integers exact: a body that holds a run of
19 or more digits (the only way to spell such an integer) is read a second time with the
standard library, whose integers are unbounded, after orjson has validated it; values
holding such integers are written with the standard library too.

The rule every service keeps, for every number in every JSON body: its magnitude is
within the range of an IEEE 754 double (at most about 1.8e308; orjson refuses the rest
as invalid, a 400). Within that range integers are exact (up to 309 digits); a number
with a fraction or an exponent is a double.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from services.common.problems import Problem, bad_json

#: Deepest nesting of arrays and objects in a value a service stores (ml document data,
#: cache values): every such value must be servable back, whatever path reads it.
MAX_DEPTH = 128
# Digits become "0", everything else "."; then a run of 19 digits is a plain substring
# search (several times faster than a regular expression, which backtracks on the many
# 16-18 digit runs of serialised floats).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_LONG_RUN = b"0" * 19


class JsonValueError(ValueError):
    """A JSON text that is well-formed but holds a number Strata cannot keep."""


def loads(text: bytes | str) -> Any:
    """Parse JSON text; integers stay exact. Raises ``orjson.JSONDecodeError`` or
    :class:`JsonValueError` (both ``ValueError``)."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        return value  # every integer has at most 18 digits: orjson kept it exactly
    try:
        return json.loads(raw)  # integers of at most 309 digits: orjson refused longer
    except RecursionError:  # orjson allows deeper nesting than this parser
        raise JsonValueError("nested too deeply") from None


def dumps_value(value: Any) -> bytes:
    """Serialise a JSON value (compact, UTF-8), integers of any size exact."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, or nesting orjson refuses
        pass
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise JsonValueError("nested too deeply") from None
    return text.encode()


def too_deep(value: Any, encoded: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (serialised as ``encoded``) nests arrays/objects beyond ``limit``."""
    if encoded.count(b"[") + encoded.count(b"{") <= limit:
        return False  # not enough brackets to be that deep, strings included
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_json(body: bytes | None, content_type: str | None = None) -> Any:
    """Parse a JSON body; 415 for a non-JSON content type, 400 for unparseable bytes.

    Integers stay exact (see the module docstring); an integer too long to keep or a
    non-finite number is a 400 too, naming the reason.
    """
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise Problem(415, "unsupported-media-type", "expected application/json")
    if not body:
        raise bad_json("request body is empty")
    try:
        return loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_json(f"request body is not valid JSON: {explain(exc)}") from None
    except JsonValueError as exc:
        raise bad_json(f"request body cannot be read: {exc}") from None


def explain(exc: orjson.JSONDecodeError) -> str:
    """A JSON syntax error in words a client understands, with its position."""
    if "surrogates not allowed" in exc.msg or "UTF-8" in exc.msg:
        return "it is not UTF-8 text"
    if "number is infinity" in exc.msg:
        return f"a number beyond the range of a double (about 1.8e308) at position {exc.pos}"
    return f"{exc.msg} at position {exc.pos}"


def dumps(value: Any) -> bytes:
    """Serialise a response body (orjson: fast, UTF-8, handles datetimes and UUIDs)."""
    return orjson.dumps(value)
