"""Where a request ends, fed byte by byte as a slow client would send it."""

from __future__ import annotations

import pytest

from services.critical.framing import CHUNKED_MARGIN, RequestFraming, Verdict

LIMIT = 1000


def framing() -> RequestFraming:
    return RequestFraming(max_head=4096, max_line=200, max_body=LIMIT)


def feed_bytewise(data: bytes) -> tuple[RequestFraming, Verdict, int]:
    """Feed one byte at a time; the verdict that ended it and how many bytes it took."""
    f = framing()
    for i in range(len(data)):
        verdict = f.feed(data[i : i + 1])
        if verdict is not Verdict.MORE:
            return f, verdict, i + 1
    return f, Verdict.MORE, len(data)


def test_a_get_is_ready_at_the_blank_line_and_not_a_byte_before() -> None:
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    f, verdict, used = feed_bytewise(request)
    assert (verdict, used) == (Verdict.READY, len(request))
    assert f.body_buffered and bytes(f.buffer) == request


def test_a_body_of_known_length_is_waited_for() -> None:
    request = b"POST /v1/transfers HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    f, verdict, used = feed_bytewise(request)
    assert (verdict, used) == (Verdict.READY, len(request))
    assert f.body_buffered


def test_a_body_over_the_limit_is_not_buffered_and_handed_over_at_once() -> None:
    f = framing()
    head = f"POST / HTTP/1.1\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode()
    assert f.feed(head) is Verdict.READY
    assert not f.body_buffered


def test_a_chunked_body_is_complete_after_its_last_chunk_and_trailers() -> None:
    request = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n3\r\n\r\n\r\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    f, verdict, used = feed_bytewise(request)
    assert (verdict, used) == (Verdict.READY, len(request))
    assert f.body_buffered


def test_a_chunked_body_without_trailers() -> None:
    request = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    _, verdict, used = feed_bytewise(request)
    assert (verdict, used) == (Verdict.READY, len(request))


def test_a_chunked_body_over_the_limit_is_handed_over_once_past_the_margin() -> None:
    f = framing()
    assert f.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") is Verdict.MORE
    size = LIMIT + CHUNKED_MARGIN + 10
    assert f.feed(f"{size:x}\r\n".encode() + b"a" * (LIMIT + CHUNKED_MARGIN)) is Verdict.MORE
    assert f.feed(b"a") is Verdict.READY
    assert not f.body_buffered


def test_chunk_framing_far_larger_than_its_data_is_refused() -> None:
    f = framing()
    f.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    verdict = Verdict.MORE
    while verdict is Verdict.MORE:
        verdict = f.feed(b"0001;" + b"e" * 150 + b"\r\na\r\n")
    assert verdict is Verdict.BODY_TOO_LARGE


def test_pipelined_requests_stay_in_the_buffer() -> None:
    f = framing()
    two = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
    assert f.feed(two) is Verdict.READY
    assert bytes(f.buffer) == two


def test_one_leading_empty_line_is_skipped() -> None:
    request = b"\r\nGET / HTTP/1.1\r\n\r\n"
    _, verdict, used = feed_bytewise(request)
    assert (verdict, used) == (Verdict.READY, len(request))


def test_expect_100_continue_is_noticed_once_the_head_is_in() -> None:
    f = framing()
    assert f.feed(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n") is (
        Verdict.MORE
    )
    assert f.expects_continue and f.wants_body
    assert f.feed(b"ok") is Verdict.READY


def test_expect_is_ignored_in_http_1_0() -> None:
    f = framing()
    f.feed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert not f.expects_continue


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\nHost: x\r\n",  # bare LF in the request line
        b"GET / HTTP/1.1\r\nHost: x\n",  # bare LF in a header
        b"\r\n\r\n",  # an empty request line
        b"GET /\r\nHost: x\r\n\r\n",  # no version
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
        b"G" * 203,  # a request line over its limit, unterminated
    ],
    ids=[
        "bare-lf-line",
        "bare-lf-header",
        "empty-line",
        "no-version",
        "no-colon",
        "folding",
        "two-lengths",
        "length-not-ascii",
        "negative-length",
        "chunked-and-length",
        "chunked-not-last",
        "unknown-coding",
        "chunked-http-1.0",
        "bad-chunk-size",
        "chunk-without-crlf",
        "long-request-line",
    ],
)
def test_what_gunicorn_refuses_is_handed_over_without_waiting_for_more(head: bytes) -> None:
    # gunicorn answers each of these from the buffer alone (400, 414 or 501).
    f = framing()
    assert f.feed(head) is Verdict.READY


def test_a_head_over_the_limit_is_refused() -> None:
    f = framing()
    f.feed(b"GET / HTTP/1.1\r\n")
    verdict = Verdict.MORE
    while verdict is Verdict.MORE:
        verdict = f.feed(b"X-Pad: " + b"p" * 100 + b"\r\n")
    assert verdict is Verdict.HEAD_TOO_LARGE
    assert len(f.buffer) > 4096


def test_a_trickled_head_is_scanned_in_linear_time() -> None:
    # 60,000 one-byte feeds of a 60 KiB head: quadratic rescanning would take minutes.
    f = RequestFraming(max_head=65536, max_line=8190, max_body=LIMIT)
    f.feed(b"GET / HTTP/1.1\r\nX-Long: ")
    for _ in range(60_000):
        assert f.feed(b"a") is Verdict.MORE
    assert f.feed(b"\r\n\r\n") is Verdict.READY
