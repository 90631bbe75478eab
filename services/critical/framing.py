"""Where an HTTP/1.x request ends, found incrementally without parsing it for real.

The worker's event loop feeds bytes as they arrive and asks one question: can a thread
now serve this request without waiting on the client? That is so once the head and the
whole body are buffered, and also as soon as gunicorn's parser is bound to refuse what is
buffered (a bare LF, a malformed request line, conflicting framing headers): gunicorn
answers those from the buffer alone. Only framing is looked at here (``Content-Length``,
``Transfer-Encoding``, ``Expect``); gunicorn still parses and validates everything.

Pure and I/O-free, so it is tested byte by byte in tests/unit/critical/test_framing.py.
"""

from __future__ import annotations

import enum
import re

_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CODINGS_BEFORE_CHUNKED = frozenset({"gzip", "deflate", "compress", "identity"})
#: A chunked body may run this far past the limit before it is handed over: gunicorn's
#: body reader asks for at least 1 KiB at a time, so the application's read of
#: ``limit + 1`` bytes is then served from the buffer without touching the socket.
CHUNKED_MARGIN = 64 * 1024


class Verdict(enum.Enum):
    """What the event loop should do with the connection now."""

    MORE = "more"  # keep reading
    READY = "ready"  # hand the buffer to a thread
    HEAD_TOO_LARGE = "head-too-large"  # answer 431 and close
    BODY_TOO_LARGE = "body-too-large"  # answer 413 and close (framing overhead)


class _Body(enum.Enum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2


class _Chunk(enum.Enum):
    SIZE = 0
    DATA = 1
    CRLF = 2
    TRAILERS = 3


class RequestFraming:
    """Accumulates one request's bytes (and whatever a client pipelines behind it).

    ``max_head``: the largest head accepted (431 beyond). ``max_line``: gunicorn's
    request-line and chunk-size-line limit. ``max_body``: the body limit; a longer body
    is handed over unbuffered (``body_buffered`` False) and the application answers 413.
    """

    def __init__(self, *, max_head: int, max_line: int, max_body: int) -> None:
        self.max_head = max_head
        self.max_line = max_line
        self.max_body = max_body
        self.buffer = bytearray()
        self.head_end: int | None = None  # offset just past the blank line
        self.expects_continue = False
        self.body_buffered = True
        self._scanned = 0  # where the search for the end of the head resumes
        self._searched = 0  # chunked: where the search for a line end resumes
        self._body = _Body.NONE
        self._length = 0
        self._pos = 0  # chunked: the next unparsed byte
        self._chunk = _Chunk.SIZE
        self._chunk_left = 0
        self._decoded = 0

    @property
    def started(self) -> bool:
        """Whether any byte of a request has arrived."""
        return bool(self.buffer)

    @property
    def wants_body(self) -> bool:
        """Head complete and a body still to come (when to send ``100 Continue``)."""
        if self.head_end is None:
            return False
        if self._body is _Body.LENGTH:
            return len(self.buffer) < self.head_end + self._length
        return self._body is _Body.CHUNKED

    def feed(self, data: bytes) -> Verdict:
        """Add ``data``; say whether the request can be served now."""
        self.buffer += data
        if self.head_end is None:
            verdict = self._scan_head()
            if verdict is not Verdict.MORE or self.head_end is None:
                return verdict
        return self._scan_body()

    # The head -------------------------------------------------------------------------

    def _scan_head(self) -> Verdict:
        """Look at the new bytes only: a trickled head costs linear time, not quadratic."""
        buf = self.buffer
        if buf[:1] == b"\r" and len(buf) < 2:
            return Verdict.MORE
        # gunicorn ignores one empty line before the request line (RFC 9112 2.2), no more.
        start = 2 if buf[:2] == b"\r\n" else 0
        if buf[start : start + 2] == b"\r\n":
            return Verdict.READY  # an empty request line: gunicorn refuses it
        fresh = max(start, self._scanned)
        end = buf.find(b"\r\n\r\n", max(start, fresh - 3))
        if _has_bare_lf(buf, fresh, len(buf) if end < 0 else end):
            return Verdict.READY  # gunicorn refuses a bare LF without reading on
        self._scanned = len(buf)
        if end < 0:
            if len(buf) - start - 2 > self.max_line and buf.find(b"\r\n", start) < 0:
                return Verdict.READY  # gunicorn answers 414 from the buffer alone
            return Verdict.HEAD_TOO_LARGE if len(buf) > self.max_head else Verdict.MORE
        if end + 4 > self.max_head:
            return Verdict.HEAD_TOO_LARGE
        self.head_end = end + 4
        return self._read_framing(bytes(buf[start:end]))

    def _read_framing(self, head: bytes) -> Verdict:
        """Body framing from the head; READY (no body to wait for) when gunicorn refuses it."""
        request_line, *lines = head.split(b"\r\n")
        parts = request_line.split(b" ")
        version = _VERSION.fullmatch(parts[-1]) if len(parts) == 3 else None
        if version is None:
            return Verdict.READY
        http11 = (int(version.group(1)), int(version.group(2))) >= (1, 1)
        lengths: list[bytes] = []
        codings: list[str] = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or line[:1] in (b" ", b"\t"):
                return Verdict.READY  # not a header, or obsolete folding: refused
            key = name.lower()
            value = value.strip(b" \t")
            if key == b"content-length":
                lengths.append(value)
            elif key == b"transfer-encoding":
                codings += [v.strip(" \t").lower() for v in value.decode("latin-1").split(",")]
            elif key == b"expect" and value.lower() == b"100-continue" and http11:
                self.expects_continue = True
        if codings:
            chunked_last = codings[-1] == "chunked" and codings.count("chunked") == 1
            if lengths or not http11 or not chunked_last:
                return Verdict.READY
            if not set(codings[:-1]) <= _CODINGS_BEFORE_CHUNKED:
                return Verdict.READY
            self._body = _Body.CHUNKED
            self._pos = self.head_end or 0
            return Verdict.MORE
        if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and lengths[0].isascii())):
            return Verdict.READY
        if lengths:
            self._length = int(lengths[0])
            if self._length > self.max_body:
                self.body_buffered = False  # the application refuses it unread (413)
                return Verdict.READY
            self._body = _Body.LENGTH
        return Verdict.MORE

    # The body -------------------------------------------------------------------------

    def _scan_body(self) -> Verdict:
        assert self.head_end is not None  # only called once the head is in
        if self._body is _Body.NONE:
            return Verdict.READY
        if self._body is _Body.LENGTH:
            done = len(self.buffer) >= self.head_end + self._length
            return Verdict.READY if done else Verdict.MORE
        verdict = self._scan_chunks()
        if verdict is Verdict.MORE and len(self.buffer) > self._raw_cap():
            return Verdict.BODY_TOO_LARGE  # chunk framing far larger than its data
        return verdict

    def _raw_cap(self) -> int:
        return self.max_head + 2 * self.max_body + CHUNKED_MARGIN

    def _scan_chunks(self) -> Verdict:
        buf = self.buffer
        while True:
            if self._chunk is _Chunk.SIZE:
                end = self._find(b"\r\n")
                if end < 0:
                    return Verdict.READY if len(buf) - self._pos > self.max_line else Verdict.MORE
                size = bytes(buf[self._pos : end]).split(b";", 1)[0].rstrip(b" \t")
                if not size or not set(size) <= _HEX:
                    return Verdict.READY  # gunicorn refuses it (400)
                self._chunk_left = int(size, 16)
                self._pos = end + 2
                self._chunk = _Chunk.DATA if self._chunk_left else _Chunk.TRAILERS
            elif self._chunk is _Chunk.DATA:
                take = min(self._chunk_left, len(buf) - self._pos)
                self._pos += take
                self._chunk_left -= take
                self._decoded += take
                if self._decoded > self.max_body + CHUNKED_MARGIN:
                    self.body_buffered = False  # the application reads past the limit: 413
                    return Verdict.READY
                if self._chunk_left:
                    return Verdict.MORE
                self._chunk = _Chunk.CRLF
            elif self._chunk is _Chunk.CRLF:
                if len(buf) - self._pos < 2:
                    return Verdict.MORE
                if buf[self._pos : self._pos + 2] != b"\r\n":
                    return Verdict.READY  # gunicorn refuses it (400)
                self._pos += 2
                self._chunk = _Chunk.SIZE
            else:
                return self._scan_trailers()

    def _find(self, terminator: bytes) -> int:
        """Find ``terminator`` from ``_pos``, not scanning again what was scanned before."""
        begin = max(self._pos, self._searched - len(terminator) + 1)
        found = self.buffer.find(terminator, begin)
        self._searched = len(self.buffer) if found < 0 else 0
        return found

    def _scan_trailers(self) -> Verdict:
        buf = self.buffer
        if buf[self._pos : self._pos + 2] == b"\r\n":
            return Verdict.READY
        if len(buf) - self._pos < 2:
            return Verdict.MORE
        if self._find(b"\r\n\r\n") >= 0:
            return Verdict.READY
        if len(buf) - self._pos > self.max_head:
            return Verdict.HEAD_TOO_LARGE
        return Verdict.MORE


def _has_bare_lf(buf: bytearray, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` holds an LF that is not preceded by CR."""
    found = buf.find(b"\n", start, end)
    while found >= 0:
        if found == 0 or buf[found - 1] != 0x0D:
            return True
        found = buf.find(b"\n", found + 1, end)
    return False
