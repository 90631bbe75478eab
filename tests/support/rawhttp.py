"""HTTP/1.1 over a plain socket, for tests about what a client library would hide."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    """A status line, headers (lower-case names) and a Content-Length framed body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class RawConnection:
    """One client connection; reads responses one at a time, keeping what follows."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.pending = b""

    def send(self, data: bytes) -> None:
        """Write ``data`` whole."""
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; unread: {self.pending!r}")
        self.pending += chunk

    def response(self) -> RawResponse:
        """The next response (interim 1xx ones included)."""
        while b"\r\n\r\n" not in self.pending:
            self._fill()
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        self.pending = rest
        while len(self.pending) < length:
            self._fill()
        body, self.pending = self.pending[:length], self.pending[length:]
        return RawResponse(int(lines[0].split(" ")[1]), headers, body)

    def closed_by_server(self) -> bool:
        """Wait (up to the socket timeout) for the server to close; False if it did not."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.pending += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Close the client side."""
        self.sock.close()


def get_with_body(port: int, path: str, token: str, body: bytes, request_id: str) -> list[int]:
    """GET ``path`` carrying ``body`` (``Content-Length`` framed, even when empty), then a
    plain GET on the same connection; the two statuses.

    The server handles a connection's requests in turn, so once the second answer is in,
    whatever the server did after the first (Sanic drains and logs an unread body after
    the answer) is done and logged. Both requests carry ``request_id`` (and ``-after``).
    """
    connection = RawConnection(port)
    statuses = []
    try:
        for suffix, payload in (("", body), ("-after", None)):
            head = [
                f"GET {path} HTTP/1.1",
                "Host: test",
                f"Authorization: Bearer {token}",
                f"X-Request-ID: {request_id}{suffix}",
            ]
            if payload is not None:
                head.append(f"Content-Length: {len(payload)}")
            connection.send("\r\n".join([*head, "", ""]).encode() + (payload or b""))
            statuses.append(connection.response().status)
    finally:
        connection.close()
    return statuses


def logged_levels(log: str, request_id: str) -> list[tuple[str, str]]:
    """``(level, msg)`` of every JSON log line of ``log`` that carries ``request_id``."""
    found = []
    for line in log.splitlines():
        if request_id not in line or not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("request_id") == request_id:
            found.append((entry["level"], entry["msg"]))
    return found
