"""HTTP framing under gunicorn, over raw sockets: body limits, Connection: close, bad headers.

A client library would hide exactly what is checked here (chunked framing, whether the
server closes, what it says before closing), so requests are written byte by byte.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.process import ServiceProcess

LIMIT = 1_048_576  # the default STRATA_CRITICAL_MAX_BODY_BYTES


@dataclass
class RawResponse:
    """What came back on the socket, and whether the server then closed it."""

    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> dict:
        return json.loads(self.body)


def _read_response(sock: socket.socket) -> RawResponse:
    """Read one response (Content-Length framed), then see whether the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    try:
        sock.settimeout(2)  # a closing server closes at once; keep-alive lasts 5 s
        closed = sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except TimeoutError:
        closed = False
    return RawResponse(int(lines[0].split(" ")[1]), headers, body[:length], closed)


def _chunks(body: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def exchange(server: ServiceProcess, head: str, body: Iterator[bytes] = iter(())) -> RawResponse:
    """Send ``head`` then ``body`` from a thread while reading the answer as it comes.

    The server may answer (413) before the body is sent; reading concurrently sees that
    answer before the server's close could reset the connection.
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)

    def send() -> None:
        try:
            sock.sendall(head.encode("latin-1"))
            for piece in body:
                sock.sendall(piece)
        except OSError:
            pass  # the server stopped reading: expected after an early answer

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return _read_response(sock)
    finally:
        sender.join(timeout=30)
        sock.close()


def _head(method: str, path: str, token: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Authorization: Bearer {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.fixture
def token(make_token) -> str:
    return make_token("critical", "accounts:read", "accounts:write")


def _account_json(size: int) -> bytes:
    """A valid account body padded with trailing spaces to exactly ``size`` bytes."""
    body = json.dumps({"owner": f"framing-{uuid.uuid4().hex[:6]}", "currency": "EUR"}).encode()
    return body + b" " * (size - len(body))


def test_chunked_body_over_the_limit_is_413_and_closes(gunicorn, token, counts) -> None:
    before = counts()
    head = _head(
        "POST",
        "/v1/accounts",
        token,
        Content_Type="application/json",
        Transfer_Encoding="chunked",
    )
    # Valid JSON whose first MiB is valid JSON too: truncating it would have been accepted.
    response = exchange(gunicorn, head, _chunks(_account_json(3 * LIMIT)))
    assert response.status == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:strata:problem:payload-too-large"
    assert response.headers["connection"] == "close"
    assert response.closed
    assert counts() == before


def test_chunked_body_of_exactly_the_limit_is_accepted(gunicorn, token) -> None:
    head = _head(
        "POST",
        "/v1/accounts",
        token,
        Content_Type="application/json",
        Transfer_Encoding="chunked",
    )
    response = exchange(gunicorn, head, _chunks(_account_json(LIMIT)))
    assert response.status == 201, response.body
    assert response.headers["connection"] == "keep-alive"
    assert not response.closed


def test_content_length_over_the_limit_is_413_and_closes(gunicorn, token) -> None:
    body = _account_json(2 * LIMIT)
    head = _head(
        "POST",
        "/v1/accounts",
        token,
        Content_Type="application/json",
        Content_Length=str(len(body)),
    )
    response = exchange(gunicorn, head, iter([body]))
    assert response.status == 413
    assert response.json()["type"] == "urn:strata:problem:payload-too-large"
    assert response.headers["connection"] == "close"
    assert response.closed


@pytest.mark.parametrize(
    "header",
    ["X-Test: a\x01b", "X-Test: a\x7fb", "Bad Name: x", "X-Test: a\x00b"],
    ids=["control-char", "delete-char", "space-in-name", "nul"],
)
def test_unparseable_headers_get_problem_json(gunicorn, header: str) -> None:
    head = f"GET /livez HTTP/1.1\r\nHost: test\r\n{header}\r\n\r\n"
    response = exchange(gunicorn, head)
    assert response.status == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:strata:problem:bad-request"
    assert response.json()["status"] == 400
    assert response.headers["connection"] == "close"
    assert b"<html" not in response.body
    # gunicorn's log line (written before the answer) carries the id the client got.
    request_id = response.headers["x-request-id"]
    assert any(
        request_id in line and "Invalid request" in line for line in gunicorn.log().splitlines()
    )


def test_unparseable_request_line_gets_problem_json(gunicorn) -> None:
    response = exchange(gunicorn, "GET /livez HTTP/1.1 extra\r\nHost: test\r\n\r\n")
    assert response.status == 400
    assert response.json()["type"] == "urn:strata:problem:bad-request"
