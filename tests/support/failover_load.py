"""A steady read/write load on the cache service that records every request.

Each thread writes unique keys (``PUT``, idempotent), increments one shared counter
(non-idempotent) and reads its last key back, in a loop bounded by count and time. The
records say when each request started and ended and how it answered, so a test can tell
when writes failed, how long any request took, and which acknowledged writes to look for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Record:
    """One request: what, when (monotonic seconds), how it answered."""

    kind: str  # "put", "incr" or "get"
    started: float
    ended: float
    status: int  # 0: no HTTP answer (the client's own timeout or a connection error)
    key: str = ""
    value: int = 0

    @property
    def ok(self) -> bool:
        """Answered as a success."""
        return self.status in (200, 404) if self.kind == "get" else self.status == 200

    @property
    def write(self) -> bool:
        """A PUT or an increment."""
        return self.kind != "get"


@dataclass
class Load:
    """``threads`` clients of ``base_url`` writing keys under ``prefix`` until stopped."""

    base_url: str
    token: str
    prefix: str
    counter: str
    threads: int = 3
    max_seconds: float = 90.0
    max_requests: int = 200_000
    client_timeout: float = 10.0
    records: list[Record] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        """Start the client threads."""
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        """Stop and wait for the threads."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.client_timeout + 5)

    def _run(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        end = time.monotonic() + self.max_seconds
        last = ""
        with httpx.Client(
            base_url=self.base_url, headers=headers, timeout=self.client_timeout
        ) as client:
            for n in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > end:
                    return
                if n % 4 == 3:
                    self._one(client, "incr", "POST", f"/v1/counters/{self.counter}:incr", None)
                elif n % 4 == 2 and last:
                    self._one(client, "get", "GET", f"/v1/kv/{last}", None)
                else:
                    key = f"{self.prefix}-{index}-{n}"
                    if self._one(client, "put", "PUT", f"/v1/kv/{key}", {"value": n}, key, n):
                        last = key

    def _one(
        self,
        client: httpx.Client,
        kind: str,
        method: str,
        path: str,
        body: object,
        key: str = "",
        value: int = 0,
    ) -> bool:
        started = time.monotonic()
        try:
            status = client.request(method, path, json=body).status_code
        except httpx.HTTPError:
            status = 0
        record = Record(kind, started, time.monotonic(), status, key, value)
        with self._lock:
            self.records.append(record)
        return record.ok

    def snapshot(self) -> list[Record]:
        """The records so far."""
        with self._lock:
            return list(self.records)

    def statuses(self) -> dict[tuple[str, int], int]:
        """How many requests of each kind answered each status (for failure messages)."""
        counts: dict[tuple[str, int], int] = {}
        for r in self.snapshot():
            counts[r.kind, r.status] = counts.get((r.kind, r.status), 0) + 1
        return counts

    def writes_ok_since(self, moment: float) -> int:
        """Successful writes that started after ``moment``."""
        return sum(1 for r in self.snapshot() if r.write and r.ok and r.started > moment)

    def last_failed_write(self) -> float | None:
        """When the last failed write ended (None: none failed)."""
        ends = [r.ended for r in self.snapshot() if r.write and not r.ok]
        return max(ends) if ends else None
