"""Slow HTTP clients (slowloris): many connections that send part of a request, then trickle.

The swarm runs its own asyncio loop in a background thread, so a test can drive normal
clients synchronously while the slow ones stay connected. Each slow connection sends the
request line and one header, then one more byte of a never-ending header every
``interval`` seconds; it records whether (and with what status line) the server closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SlowConnection:
    """What one slow client saw."""

    connected: bool = False
    closed_by_server: bool = False
    response: bytes = b""
    error: str | None = None


@dataclass
class SwarmReport:
    """Counts over the swarm at one moment."""

    opened: int
    open_now: int
    closed_by_server: int
    failed: int
    status_lines: dict[str, int] = field(default_factory=dict)


class SlowSwarm:
    """``count`` slow connections to ``host:port``; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        *,
        interval: float = 2.0,
        prefix: bytes = b"GET /livez HTTP/1.1\r\nHost: slow\r\nX-Slow: ",
        connect_concurrency: int = 200,
    ) -> None:
        self.host = host
        self.port = port
        self.count = count
        self.interval = interval
        self.prefix = prefix
        self.connect_concurrency = connect_concurrency
        self.connections = [SlowConnection() for _ in range(count)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Future[None] | None = None
        self._lock = threading.Lock()

    def start(self) -> SlowSwarm:
        """Start opening the connections (returns at once; see :meth:`wait_until`)."""
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._run(), self._loop)  # type: ignore[assignment]
        return self

    def report(self) -> SwarmReport:
        """A snapshot of the swarm."""
        with self._lock:
            conns = list(self.connections)
        statuses: dict[str, int] = {}
        for conn in conns:
            if conn.response:
                line = conn.response.split(b"\r\n", 1)[0].decode("latin-1")
                statuses[line] = statuses.get(line, 0) + 1
        return SwarmReport(
            opened=sum(c.connected for c in conns),
            open_now=sum(c.connected and not c.closed_by_server and not c.error for c in conns),
            closed_by_server=sum(c.closed_by_server for c in conns),
            failed=sum(c.error is not None for c in conns),
            status_lines=statuses,
        )

    def wait_until(
        self, condition: Callable[[SwarmReport], bool], timeout: float, poll: float = 0.1
    ) -> SwarmReport:
        """Poll :meth:`report` until ``condition`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.report()
            if condition(report):
                return report
            if time.monotonic() > deadline:
                raise AssertionError(f"swarm condition not met within {timeout}s: {report}")
            time.sleep(poll)

    def stop(self) -> None:
        """Close every connection and the loop."""
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._main is not None:
            with contextlib.suppress(Exception):
                self._main.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        gate = asyncio.Semaphore(self.connect_concurrency)
        tasks = [asyncio.create_task(self._one(i, gate)) for i in range(self.count)]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, index: int, gate: asyncio.Semaphore) -> None:
        state = self.connections[index]
        writer: asyncio.StreamWriter | None = None
        reading: asyncio.Task[bytes] | None = None
        try:
            async with gate:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(self.prefix)
                await writer.drain()
            state.connected = True
            reading = asyncio.create_task(reader.read(65536))
            while True:
                done, _ = await asyncio.wait({reading}, timeout=self.interval)
                if done:
                    state.response = reading.result()
                    state.closed_by_server = True
                    return
                writer.write(b"a")
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            if state.connected:
                state.closed_by_server = True  # a reset while trickling: the server closed it
            else:
                state.error = f"{type(exc).__name__}: {exc}"
        finally:
            if reading is not None:
                reading.cancel()
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
