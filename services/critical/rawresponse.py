"""Complete HTTP responses written straight to a socket, for answers the app never sees.

gunicorn's parse errors and the worker's own refusals (a request too slow to arrive, a
head too large) are answered before Flask is involved; they still get problem+json and an
``X-Request-ID``, and they always close the connection.
"""

from __future__ import annotations

from http import HTTPStatus

from services.common.jsonbody import dumps
from services.common.problems import PROBLEM_CONTENT_TYPE, Problem
from services.common.requestid import HEADER


def problem_bytes(problem: Problem, request_id: str) -> bytes:
    """``problem`` as a whole HTTP/1.1 response with ``Connection: close``."""
    body = dumps(problem.to_dict())
    extra = "".join(f"{name}: {value}\r\n" for name, value in problem.headers.items())
    head = (
        f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}"
        f"{HEADER}: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body
