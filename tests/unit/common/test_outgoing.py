"""The one decision both frameworks apply on the way out: 304, gzip or as it is."""

from __future__ import annotations

import pytest

from services.common.compression import Compressor
from services.common.outgoing import Action, Answer, Asked, Plan, plan

RULE = Compressor(min_bytes=100, level=1)
JSON = "application/json"
GZIP = "gzip"


def _json(
    size: int = 500,
    *,
    etag: str | None = None,
    vary: str | None = None,
    content_encoding: str | None = None,
) -> Answer:
    """A 200 JSON answer of ``size`` bytes."""
    return Answer(
        200, size, etag=etag, content_type=JSON, content_encoding=content_encoding, vary=vary
    )


def test_a_held_etag_is_not_modified_keeping_only_etag_and_vary() -> None:
    decided = plan(
        Asked("GET", if_none_match='W/"7"', accept_encoding=GZIP),
        _json(etag='"7"', vary="Origin", content_encoding=None),
        RULE,
    )
    assert decided == Plan(Action.NOT_MODIFIED, {"ETag": '"7"', "Vary": "Origin"})


def test_a_304_without_vary_carries_the_etag_alone() -> None:
    decided = plan(Asked("HEAD", if_none_match="*"), _json(etag='"7"'), RULE)
    assert decided == Plan(Action.NOT_MODIFIED, {"ETag": '"7"'})


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        (Asked("GET", if_none_match='"8"'), _json(etag='"7"')),  # another version
        (Asked("PUT", if_none_match='"7"'), _json(etag='"7"')),  # not a read
        (Asked("GET", if_none_match='"7"'), Answer(201, 500, etag='"7"', content_type=JSON)),
        (Asked("GET", if_none_match="*"), _json()),  # no ETag to compare
    ],
)
def test_no_304_unless_a_successful_read_matches(asked: Asked, answer: Answer) -> None:
    assert plan(asked, answer, RULE).action is not Action.NOT_MODIFIED


def test_a_streamed_answer_still_becomes_304() -> None:
    """Streaming says nothing about the ETag: a held one still saves the body."""
    streamed = Answer(200, None, etag='"7"', content_type=JSON)
    assert plan(Asked("GET", if_none_match='"7"'), streamed, RULE).action is Action.NOT_MODIFIED


def test_a_large_json_body_is_gzipped_with_a_weak_etag() -> None:
    decided = plan(Asked("GET", accept_encoding=GZIP), _json(etag='"7"', vary="Origin"), RULE)
    assert decided == Plan(
        Action.GZIP,
        {"Vary": "Origin, Accept-Encoding", "Content-Encoding": "gzip", "ETag": 'W/"7"'},
    )


def test_a_weak_etag_stays_as_it_is_when_gzipped() -> None:
    decided = plan(Asked("GET", accept_encoding=GZIP), _json(etag='W/"7"'), RULE)
    assert decided.headers == {"Vary": "Accept-Encoding", "Content-Encoding": "gzip"}


def test_identity_for_a_client_refusing_gzip_still_varies() -> None:
    for refusal in (None, "br", "gzip;q=0"):
        decided = plan(Asked("GET", accept_encoding=refusal), _json(vary="Accept-Encoding"), RULE)
        assert decided == Plan(Action.AS_IS, {"Vary": "Accept-Encoding"}), refusal


@pytest.mark.parametrize(
    "answer",
    [
        _json(size=99),  # below gzip_min_bytes
        _json(size=0),  # no body
        Answer(200, None, content_type=JSON),  # streamed: it encodes itself
        Answer(200, 500, content_type="text/html"),  # not JSON
        _json(content_encoding="gzip"),  # already encoded
    ],
)
def test_left_as_it_is_without_a_header_to_set(answer: Answer) -> None:
    assert plan(Asked("GET", accept_encoding=GZIP), answer, RULE) == Plan(Action.AS_IS)


def test_problem_json_is_compressible_and_zero_min_bytes_turns_gzip_off() -> None:
    problem = Answer(404, 500, content_type="application/problem+json; charset=utf-8")
    assert plan(Asked("GET", accept_encoding=GZIP), problem, RULE).action is Action.GZIP
    off = Compressor(min_bytes=0, level=1)
    assert plan(Asked("GET", accept_encoding=GZIP), _json(), off) == Plan(Action.AS_IS)
