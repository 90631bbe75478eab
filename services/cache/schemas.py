"""Request and response shapes of the cache API, and key validation.

The pydantic models validate request bodies and produce the OpenAPI document. Values
are typed ``Any`` on purpose: any JSON value is allowed, and a JsonValue model would walk
every nested value on each request (about 4x slower) for nothing orjson does not check.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.cache.settings import MAX_TTL
from services.common.jsonbody import MAX_DEPTH, JsonValueError, dumps_value, too_deep
from services.common.limits import INT64_MAX, INT64_MIN
from services.common.operation import Param
from services.common.problems import Problem, validation_failed

MAX_KEY_BYTES = 512
# Printable ASCII without space: the common case, checked by one regex match.
_ASCII_KEY = re.compile(rf"[!-~]{{1,{MAX_KEY_BYTES}}}")

KEY = Param(
    "key",
    "path",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES, "pattern": r"^[^\s]+$"},
    required=True,
    description="1..512 bytes of printable characters without whitespace, percent-encoded",
)

Ttl = Annotated[StrictInt, Field(ge=1, le=MAX_TTL, description="seconds")]
Key = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_BYTES,
        pattern=r"^[^\s\x00-\x1f\x7f]+$",
        description="1..512 bytes (UTF-8) of printable characters, no whitespace",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PutValue(_Body):
    """``PUT /v1/kv/{key}``: any JSON value, optional TTL."""

    value: Any = Field(description="any JSON value")
    ttl: Ttl | None = None


class Entry(BaseModel):
    """A stored value; ``ttl`` is the remaining lifetime in seconds, null if it never expires."""

    key: str
    value: Any
    ttl: int | None


class MgetRequest(_Body):
    """``POST /v1/kv:mget``."""

    keys: list[Key] = Field(min_length=1)


class MgetResponse(BaseModel):
    """Every requested key with its value, null where absent."""

    values: dict[str, Any]


class MsetRequest(_Body):
    """``POST /v1/kv:mset``: every item stored atomically with the same TTL (or none)."""

    items: dict[Key, Any] = Field(min_length=1)
    ttl: Ttl | None = None


class MsetResponse(BaseModel):
    """How many keys were stored and their TTL."""

    count: int
    ttl: int | None


class IncrRequest(_Body):
    """``POST /v1/counters/{key}:incr``; an empty body means ``{"by": 1}``."""

    by: Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)] = 1
    ttl: Ttl | None = Field(
        default=None, description="expiry set when the counter has none yet (a window)"
    )


class CounterValue(BaseModel):
    """A counter."""

    key: str
    value: int


def _bad_key(loc: list[str | int], msg: str) -> Problem:
    return validation_failed([{"loc": loc, "msg": msg, "type": "key"}], "invalid key")


def check_key(key: str, loc: list[str | int]) -> str:
    """Raise 422 unless ``key`` is 1..512 UTF-8 bytes of printable, non-space characters."""
    if _ASCII_KEY.fullmatch(key):
        return key
    if not key:
        raise _bad_key(loc, "key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise _bad_key(loc, f"key must be at most {MAX_KEY_BYTES} bytes")
    for char in key:
        if char.isspace() or not char.isprintable():
            raise _bad_key(loc, "key must be printable characters without whitespace")
    return key


def path_key(raw: str) -> str:
    """The key from a URL path segment: percent-decoded (UTF-8), then validated."""
    if "%" in raw:
        try:
            raw = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise _bad_key(["path", "key"], "key is not valid UTF-8") from None
    return check_key(raw, ["path", "key"])


def encode_value(value: Any, limit: int, loc: list[str | int]) -> bytes:
    """The value as JSON text (integers exact), 413 ``value-too-large`` over ``limit`` bytes.

    422 when it nests deeper than ``MAX_DEPTH`` levels: it could not be served back.
    """
    try:
        encoded = dumps_value(value)
    except JsonValueError:  # nested beyond what can even be serialised
        raise _too_deep(loc) from None
    if len(encoded) > limit:
        raise Problem(
            413,
            "value-too-large",
            f"value encodes to {len(encoded)} bytes; the limit is {limit}",
            errors=[{"loc": loc, "msg": f"at most {limit} bytes of JSON", "type": "size"}],
        )
    if too_deep(value, encoded):
        raise _too_deep(loc)
    return encoded


def _too_deep(loc: list[str | int]) -> Problem:
    return validation_failed(
        [{"loc": loc, "msg": f"nests deeper than {MAX_DEPTH} levels", "type": "depth"}],
        "value nests too deeply",
    )


def check_batch(count: int, limit: int, loc: list[str | int]) -> None:
    """422 when a batch holds more than ``limit`` keys."""
    if count > limit:
        raise validation_failed(
            [{"loc": loc, "msg": f"at most {limit} keys per request", "type": "too_long"}],
            "batch too large",
        )
