"""What happens to an answer on its way out: 304, gzip or as it is.

The one decision both frameworks take after a handler returns (``sanic_support`` and
``critical.web`` only apply it): a GET whose ETag the client already holds becomes
``304 Not Modified``; a large JSON body is gzipped for a client that accepts it. Pure:
it reads header values and a size, and says what to do and which headers to set.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.common.compression import Compressor, accepts_gzip, gzip_headers, vary_with
from services.common.etag import not_modified


class Action(enum.Enum):
    """What the framework does with the answer."""

    NOT_MODIFIED = "not-modified"  # send a bodiless 304 carrying only ``Plan.headers``
    GZIP = "gzip"  # gzip the body and set ``Plan.headers``
    AS_IS = "as-is"  # send the body as it is, with ``Plan.headers`` set


@dataclass(frozen=True, slots=True)
class Asked:
    """The request headers the decision reads."""

    method: str
    if_none_match: str | None = None
    accept_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The response as the handler left it.

    ``size`` is the body's length, or None when there is no body to rewrite (a streamed
    answer, which encodes itself).
    """

    status: int
    size: int | None
    etag: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    vary: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The decision: an action and the headers to set (for a 304: its only headers)."""

    action: Action
    headers: Mapping[str, str] = field(default_factory=dict)


AS_IS = Plan(Action.AS_IS)


def plan(asked: Asked, answer: Answer, compressor: Compressor) -> Plan:
    """304 for a GET whose ETag the client holds; gzip for a large JSON body.

    A 304 keeps only the ETag and Vary of the answer it stands for. A compressible body
    gets ``Vary: Accept-Encoding`` also when this client is sent identity: a cache must
    not hand the identity bytes to a client that asked for gzip, or the reverse.
    """
    if not_modified(asked.method, answer.status, asked.if_none_match, answer.etag):
        kept = {"ETag": answer.etag, "Vary": answer.vary}
        return Plan(Action.NOT_MODIFIED, {k: v for k, v in kept.items() if v is not None})
    if not answer.size or not compressor.applies(
        answer.content_type, answer.content_encoding, answer.size
    ):
        return AS_IS
    vary = {"Vary": vary_with(answer.vary)}
    if not accepts_gzip(asked.accept_encoding):
        return Plan(Action.AS_IS, vary)
    return Plan(Action.GZIP, vary | gzip_headers(answer.etag))
