"""gzip for large JSON answers, the same rule in every service.

A response is compressed when the client accepts gzip (RFC 9110 ``Accept-Encoding``,
q-values honoured), its body is JSON and at least ``gzip_min_bytes`` long: below that
the header bytes and the CPU cost outweigh what is saved. Level 1 by default, as
nginx does: on JSON it keeps most of the ratio of level 6 at a fraction of the time.
Streamed answers (the ml export) compress themselves chunk by chunk with
:class:`GzipStream`, under the same ``Accept-Encoding`` rule.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass

#: Bodies from this size up are compressed off the event loop (zlib frees the GIL).
OFFLOAD_BYTES = 256 * 1024
_GZIP_WBITS = 31  # 16 + 15: a gzip header and trailer around a deflate stream
_COMPRESSIBLE = ("application/json", "application/problem+json")


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding: header`` allows gzip (RFC 9110 section 12.5.3).

    ``gzip`` (or ``x-gzip``) with a ``q`` above 0 does; ``gzip;q=0`` does not, whatever
    else is listed; otherwise ``*`` with a ``q`` above 0 does.
    """
    if not header:
        return False
    wildcard: float | None = None
    for item in header.split(","):
        coding, _, params = item.partition(";")
        name = coding.strip().lower()
        if name in ("gzip", "x-gzip"):
            return _quality(params) > 0
        if name == "*":
            wildcard = _quality(params)
    return wildcard is not None and wildcard > 0


def _quality(params: str) -> float:
    """The ``q`` of one coding's parameters (1 when absent; 0 when malformed or out of range)."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight is no consent
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def compressible(content_type: str | None, size: int, min_bytes: int) -> bool:
    """Whether a body of this type and size is worth gzip (``min_bytes`` 0 turns it off)."""
    if not min_bytes or size < min_bytes or not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in _COMPRESSIBLE


def gzip_body(body: bytes, level: int) -> bytes:
    """``body`` as a gzip member with no timestamp (equal bodies give equal bytes)."""
    return gzip.compress(body, compresslevel=level, mtime=0)


def vary_with(current: str | None, name: str = "Accept-Encoding") -> str:
    """``current``'s Vary list with ``name`` added once."""
    names = [v.strip() for v in (current or "").split(",") if v.strip()]
    if any(v.lower() == name.lower() or v == "*" for v in names):
        return ", ".join(names)
    return ", ".join([*names, name])


@dataclass(frozen=True, slots=True)
class Compressor:
    """The service's gzip rule (settings ``gzip_min_bytes`` and ``gzip_level``)."""

    min_bytes: int
    level: int

    def applies(self, content_type: str | None, content_encoding: str | None, size: int) -> bool:
        """Whether an answer of this type and size is gzipped for a client that accepts it."""
        return not content_encoding and compressible(content_type, size, self.min_bytes)


def gzip_headers(etag: str | None) -> dict[str, str]:
    """The headers of a gzipped answer whose identity form carried ``etag``.

    A strong ETag becomes weak, as nginx does: the gzip bytes are another
    representation, and ``If-Match``/``If-None-Match`` compare weakly anyway.
    """
    headers = {"Content-Encoding": "gzip"}
    if etag and not etag.startswith("W/"):
        headers["ETag"] = "W/" + etag
    return headers


def vary_merged(current: str | None, extra: dict[str, str]) -> dict[str, str]:
    """``extra`` headers to set on an answer whose Vary is ``current``, that Vary kept.

    CORS adds ``Vary: Origin`` after compression added ``Accept-Encoding``: both stay.
    """
    if "Vary" not in extra or not current:
        return extra
    return {**extra, "Vary": vary_with(current, extra["Vary"])}


class GzipStream:
    """One gzip member written chunk by chunk (streamed answers: the ml export).

    Every chunk is flushed (``Z_SYNC_FLUSH``) to a byte boundary, so a slow consumer
    decodes each chunk as soon as it arrives and the worker holds no more than a chunk
    and zlib's window.
    """

    def __init__(self, level: int = 1) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)

    def chunk(self, data: bytes) -> bytes:
        """``data`` compressed, flushed so that the receiver can decode all of it now."""
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        """The end of the stream (the last block and the gzip trailer)."""
        return self._zlib.flush(zlib.Z_FINISH)
