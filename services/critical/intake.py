"""A gthread worker that receives each whole request in its event loop before a thread serves it.

Why: gunicorn 27's ``ThreadWorker`` hands every new connection to a request thread at once.
The thread waits up to 5 s for a first byte (``wait_for_data``) and, as soon as one byte
is there, parses with a blocking socket that has no timeout. A client that sends one
header line and trickles the rest therefore holds a thread for ever, and 8 such clients
(2 workers x 4 threads) stopped the service, probes included. Even clients that send
nothing hold a thread for 5 s each, in a queue every new connection waits behind; kept-
alive connections go back to a thread on their first byte; and closing a connection
(``close_graceful``) lingers up to 2 s in the event loop itself.

Here the event loop (one per worker, epoll) reads every connection without blocking until
:class:`~services.critical.framing.RequestFraming` says the head and the body (up to the
body limit) are buffered, then hands the buffer to a thread, which parses it with
gunicorn's own parser and never waits on the client for it. Each request has a deadline:
``idle_timeout`` for its first byte, ``read_timeout`` from its first byte to its last;
past it the client gets 408 and is closed. Buffers of all connections together stay
under ``buffer_budget`` (503 beyond). Threads write responses with the socket timeout set
to ``read_timeout``, so a client that stops reading cannot hold a thread longer either.
Closing half-closes and drains in the event loop, never blocking it.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import selectors
import socket
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from services.common.problems import Problem, body_too_large
from services.common.requestid import choose_request_id
from services.critical.framing import RequestFraming, Verdict
from services.critical.rawresponse import problem_bytes

#: The largest request head (request line and headers) a worker buffers: 431 beyond.
HEAD_LIMIT = 64 * 1024
_RECV = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: accept() errors that mean "no descriptor or memory for another connection now".
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_GAUGE_PERIOD = 1.0


@dataclass(frozen=True)
class IntakeLimits:
    """The deadlines and sizes the event loop enforces."""

    read_timeout: float  # from a request's first byte to its last; also the write timeout
    idle_timeout: float  # from accept (or the last response) to a request's first byte
    max_body: int
    buffer_budget: int  # bytes buffered by all connections of one worker
    max_line: int = 8190
    max_head: int = HEAD_LIMIT
    linger: float = STOP_KEEPALIVE_LINGER  # after the server's FIN, before it closes


class IntakeObserver(Protocol):
    """Where the worker reports its connections (metrics)."""

    def connections(self, states: Mapping[str, int], buffered: int) -> None:
        """The number of connections in each state now, and the bytes buffered for them."""

    def cut(self, reason: str) -> None:
        """The worker closed a connection for ``reason`` (a deadline or a limit)."""


class IntakeConn(TConn):  # type: ignore[misc]
    """A connection, plus what the event loop buffered of its next request."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.framing: RequestFraming | None = None
        self.state = ""  # idle, reading, busy or closing once the worker has it
        self.deadline = 0.0
        self.token = 0  # the current deadline's; older heap entries are stale
        self.held = 0  # bytes counted against the worker's budget
        self.handover = b""
        self.body_buffered = True
        self.continue_sent = False
        self.thread_timeout: float | None = None

    def init(self) -> None:
        """In the request thread: bound socket waits, give the parser what was buffered."""
        super().init()
        self.sock.settimeout(self.thread_timeout)
        if self.handover:
            self.parser.unreader.unread(self.handover)
            self.handover = b""


class IntakeThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``ThreadWorker`` whose threads only ever see completely received requests."""

    limits: IntakeLimits
    observer: IntakeObserver | None = None

    def intake_limits(self) -> IntakeLimits:
        """The limits to enforce; subclasses read them from their settings."""
        return IntakeLimits(
            read_timeout=10.0,
            idle_timeout=float(self.cfg.keepalive or 10),
            max_body=1_048_576,
            buffer_budget=32 * 1_048_576,
        )

    def run(self) -> None:
        """Set up the loop's state, then gunicorn's loop (which calls back in here)."""
        self.limits = self.intake_limits()
        self._heap: list[tuple[float, int, IntakeConn]] = []
        self._tokens = itertools.count(1)
        self._waiting: set[IntakeConn] = set()
        self._states: Counter[str] = Counter()
        self._buffered = 0
        self._stopping = False
        self._next_gauge = 0.0
        super().run()

    # Connections in --------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        """Accept one connection and start waiting for its request in the loop."""
        try:
            client, addr = listener.accept()
        except OSError as exc:
            if exc.errno in _EXHAUSTED:
                # Stop accepting until a connection closes rather than spin on the error.
                self.worker_connections = max(1, self.nr_conns)
                self.log.warning(
                    "accept failed (%s): serving at most %d connections",
                    errno.errorcode.get(exc.errno or 0, exc),
                    self.nr_conns,
                )
                return
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = IntakeConn(self.cfg, client, addr, listener.getsockname())
        conn.thread_timeout = self.limits.read_timeout
        self._await_request(conn, b"")

    def _await_request(self, conn: IntakeConn, pending: bytes) -> None:
        """Read the next request on ``conn`` in the loop (``pending``: bytes already read)."""
        conn.framing = RequestFraming(
            max_head=self.limits.max_head,
            max_line=self.limits.max_line,
            max_body=self.limits.max_body,
        )
        conn.continue_sent = False
        conn.sock.setblocking(False)
        self._waiting.add(conn)
        self._set_state(conn, "idle")
        self._schedule(conn, time.monotonic() + self.limits.idle_timeout)
        if pending and not self._take(conn, pending):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: IntakeConn, _sock: Any) -> None:
        data = _recv(conn)
        if data is None:
            return
        if not data:  # the client closed or reset: nothing to answer
            framing = conn.framing
            if framing is not None and framing.wants_body:
                # A whole head and a cut body: the application sees the short body and
                # records the aborted request (499) under its route, like the other
                # services do; its answer goes nowhere.
                self._dispatch(conn)
                return
            self._unregister(conn)
            self._close(conn)
            return
        self._take(conn, data)

    def _take(self, conn: IntakeConn, data: bytes) -> bool:
        """Buffer ``data`` and act on it; False once the connection left the reading loop."""
        framing = conn.framing
        assert framing is not None  # set while the connection waits
        if self._buffered + len(data) > self.limits.buffer_budget:
            busy = Problem(
                503,
                "server-busy",
                "too many requests are arriving at once; retry later",
                headers={"Retry-After": "1"},
            )
            self._refuse(conn, busy, "busy")
            return False
        first = not framing.started
        self._buffered += len(data)
        conn.held += len(data)
        verdict = framing.feed(data)
        if verdict is Verdict.MORE:
            if first:
                self._set_state(conn, "reading")
                self._schedule(conn, time.monotonic() + self.limits.read_timeout)
            if framing.expects_continue and framing.wants_body and not conn.continue_sent:
                conn.continue_sent = True
                self._send(conn, _CONTINUE)
            return True
        if verdict is Verdict.READY:
            self._dispatch(conn)
        elif verdict is Verdict.HEAD_TOO_LARGE:
            too_large = Problem(
                431,
                "header-fields-too-large",
                f"the request head is over {self.limits.max_head} bytes",
            )
            self._refuse(conn, too_large, "head-too-large")
        else:
            self._refuse(conn, body_too_large(self.limits.max_body), "body-too-large")
        return False

    def _dispatch(self, conn: IntakeConn) -> None:
        """The request is all here (or gunicorn will refuse it): a thread serves it."""
        framing = conn.framing
        assert framing is not None  # set while the connection waits
        self._unregister(conn)
        conn.handover = bytes(framing.buffer)
        conn.body_buffered = framing.body_buffered
        self._release(conn)
        conn.data_ready = True  # gunicorn's handle() must not wait for data again
        self._set_state(conn, "busy")
        self.enqueue_req(conn)

    # Requests in threads ---------------------------------------------------------------

    def handle_request(self, req: Any, conn: IntakeConn) -> bool:
        """Serve one request; a body left on the socket, or a stalled client, closes it."""
        if not conn.body_buffered:
            req.force_close()  # never drain an unbuffered body in a thread
        if conn.continue_sent or not conn.body_buffered:
            # Said once by the loop already; or the body is over the limit and will be
            # refused unread, so the client should not be invited to send it.
            req._expected_100_continue = False
        try:
            return bool(super().handle_request(req, conn))
        except TimeoutError:
            self.log.info("closing a connection: client stalled for %ss", self.limits.read_timeout)
            return False

    def finish_request(self, conn: IntakeConn, fs: Any) -> None:
        """Back in the loop after a request: wait for the next one, or close."""
        try:
            keep = bool(fs.result()) if not fs.cancelled() else False
        except Exception:  # gunicorn's handle() catches everything; this is a safety net
            keep = False
        if keep:
            self._await_request(conn, conn.parser.unreader.take_buffered())
        else:
            self._linger(conn)

    # Deadlines and closing -------------------------------------------------------------

    def murder_pending(self) -> None:
        """Every loop turn: expire deadlines, cap them when stopping, publish the gauges."""
        now = time.monotonic()
        if not self.alive and not self._stopping:
            self._stopping = True
            for conn in list(self._waiting):  # answer in-flight requests, then stop
                if conn.deadline > now + self.limits.linger:
                    self._schedule(conn, now + self.limits.linger)
        while self._heap and self._heap[0][0] <= now:
            _, token, conn = heapq.heappop(self._heap)
            if token == conn.token:
                self._expire(conn)
        if self.observer is not None and now >= self._next_gauge:
            self._next_gauge = now + _GAUGE_PERIOD
            self.observer.connections(self._states, self._buffered)

    def _expire(self, conn: IntakeConn) -> None:
        if conn.state == "closing":
            self._unregister(conn)
            self._close(conn)
            self._count("linger")
        elif conn.framing is not None and conn.framing.started:
            late = Problem(
                408,
                "request-timeout",
                f"the request did not arrive within {self.limits.read_timeout:g} s",
            )
            self._refuse(conn, late, "read-timeout")
        else:
            self._unregister(conn)
            self._close(conn)
            self._count("idle")

    def _refuse(self, conn: IntakeConn, problem: Problem, reason: str) -> None:
        """Answer from the loop, then close."""
        self._unregister(conn)
        self._release(conn)
        self._send(conn, problem_bytes(problem, choose_request_id(None)))
        self._count(reason)
        self._linger(conn)

    def _linger(self, conn: IntakeConn) -> None:
        """Half-close, then read and discard until the client closes or ``linger`` passes.

        Closing with unread data in the receive buffer makes the kernel send RST, which
        can destroy a response the client has not read yet (RFC 9112 9.6).
        """
        self._release(conn)
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self._set_state(conn, "closing")
        self._schedule(conn, time.monotonic() + self.limits.linger)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: IntakeConn, _sock: Any) -> None:
        if _recv(conn) == b"":
            self._unregister(conn)
            self._close(conn)

    def _close(self, conn: IntakeConn) -> None:
        self._release(conn)
        self._waiting.discard(conn)
        conn.token = 0
        self._set_state(conn, None)
        self.nr_conns -= 1
        conn.close()

    # Bookkeeping -----------------------------------------------------------------------

    def _schedule(self, conn: IntakeConn, deadline: float) -> None:
        if self._stopping:
            deadline = min(deadline, time.monotonic() + self.limits.linger)
        conn.deadline = deadline
        conn.token = next(self._tokens)
        heapq.heappush(self._heap, (deadline, conn.token, conn))

    def _release(self, conn: IntakeConn) -> None:
        """Stop waiting for a request on ``conn``: its deadline and buffer are dropped."""
        self._buffered -= conn.held
        conn.held = 0
        conn.framing = None
        conn.token = 0
        self._waiting.discard(conn)

    def _unregister(self, conn: IntakeConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _set_state(self, conn: IntakeConn, state: str | None) -> None:
        if conn.state:
            self._states[conn.state] -= 1
        conn.state = state or ""
        if state:
            self._states[state] += 1

    def _send(self, conn: IntakeConn, data: bytes) -> None:
        """Best effort, never blocking: a response this small fits an empty send buffer."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _count(self, reason: str) -> None:
        if self.observer is not None:
            self.observer.cut(reason)


def _recv(conn: IntakeConn) -> bytes | None:
    """What ``conn`` has sent: None when nothing is ready yet, ``b""`` when the client closed
    or reset the connection."""
    try:
        data: bytes = conn.sock.recv(_RECV)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
    return data
