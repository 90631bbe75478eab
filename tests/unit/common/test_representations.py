"""The shared rules behind 304 and gzip: If-None-Match matching and Accept-Encoding."""

from __future__ import annotations

import gzip

import pytest

from services.common.compression import (
    Compressor,
    accepts_gzip,
    compressible,
    gzip_body,
    gzip_headers,
    vary_merged,
    vary_with,
)
from services.common.etag import none_match, not_modified


@pytest.mark.parametrize(
    ("header", "etag", "matches"),
    [
        ('"3"', '"3"', True),
        ('W/"3"', '"3"', True),  # weak comparison
        ('"3"', 'W/"3"', True),
        ('"1", "2" , "3"', '"3"', True),
        ("*", '"9"', True),
        ('"4"', '"3"', False),
        ('"33"', '"3"', False),
        ("", '"3"', False),
        (None, '"3"', False),
    ],
)
def test_none_match(header: str | None, etag: str, matches: bool) -> None:
    assert none_match(header, etag) is matches


def test_only_a_successful_read_becomes_304() -> None:
    assert not_modified("GET", 200, '"3"', '"3"')
    assert not_modified("HEAD", 200, "*", '"3"')
    assert not not_modified("PUT", 200, '"3"', '"3"')
    assert not not_modified("GET", 404, "*", '"3"')
    assert not not_modified("GET", 200, "*", None)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # gzip named explicitly wins over the wildcard
        ("identity", False),
        ("br", False),
        ("gzip;q=nonsense", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_what_is_worth_compressing() -> None:
    assert compressible("application/json", 2048, 1024)
    assert compressible("application/problem+json; charset=utf-8", 1024, 1024)
    assert not compressible("application/json", 1023, 1024)
    assert not compressible("text/plain", 9999, 1024)
    assert not compressible("application/json", 9999, 0)  # 0 turns it off
    assert not compressible(None, 9999, 1)
    assert not Compressor(1, 1).applies("application/json", "gzip", 9999)  # already encoded
    assert Compressor(1, 1).applies("application/json", None, 9999)


def test_gzip_is_deterministic_and_weakens_a_strong_etag() -> None:
    body = b'{"items":[' + b'{"a":1},' * 200 + b"]}"
    packed = gzip_body(body, 1)
    assert gzip.decompress(packed) == body
    assert packed == gzip_body(body, 1)  # no timestamp in the header
    assert gzip_headers('"3"') == {"Content-Encoding": "gzip", "ETag": 'W/"3"'}
    assert gzip_headers('W/"ab"') == {"Content-Encoding": "gzip"}
    assert gzip_headers(None) == {"Content-Encoding": "gzip"}


def test_vary_lists_accept_encoding_once() -> None:
    assert vary_with(None) == "Accept-Encoding"
    assert vary_with("Origin") == "Origin, Accept-Encoding"
    assert vary_with("origin, accept-encoding") == "origin, accept-encoding"
    assert vary_with("*") == "*"


def test_cors_vary_joins_the_compression_vary() -> None:
    cors = {"Access-Control-Allow-Origin": "https://a.example", "Vary": "Origin"}
    assert vary_merged("Accept-Encoding", cors)["Vary"] == "Accept-Encoding, Origin"
    assert vary_merged(None, cors) == cors
    assert vary_merged("Accept-Encoding", {"X-Request-ID": "r"}) == {"X-Request-ID": "r"}
