"""``make bench-ml``, large documents: worker memory and time of exports, pages and samples.

Measured on the service under test and, when ``BENCH_ML_BASELINE`` names a git revision
(e.g. ``BENCH_ML_BASELINE=main``), on the ml service of that revision too, run from a
``git archive`` of it against the same database in the same run: exports alternate
between the two, so both meet the same load. The figures are each worker's peak RSS
growth during the read (sampled every 10 ms) and the time it took.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Protocol

import httpx
import psutil
import requests

from services.devstack.ports import free_port
from services.devstack.postgres import PostgresServer
from tests.support.process import ROOT

LARGE_ROWS = 200
LARGE_CHARS = 900_000  # ~0.9 MB of data per document
MIB = 1024 * 1024
ROUNDS = int(os.environ.get("BENCH_ML_ROUNDS", "2"))


class Served(Protocol):
    """A running service: its main process and its URL."""

    base_url: str
    process: subprocess.Popen[bytes] | None


class PeakRss(threading.Thread):
    """The largest RSS growth of any worker of ``service`` while the ``with`` block runs."""

    def __init__(self, service: Served) -> None:
        super().__init__(daemon=True)
        assert service.process is not None
        main = psutil.Process(service.process.pid)
        self.workers = [p for p in main.children(recursive=True) if "python" in p.name()]
        self.base = {p.pid: p.memory_info().rss for p in self.workers}
        self.peak = dict(self.base)
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until told to stop."""
        while not self.done.wait(0.01):
            for p in self.workers:
                self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.join()

    @property
    def growth_mib(self) -> float:
        """The largest growth over the workers, MiB."""
        return max(self.peak[p] - self.base[p] for p in self.base) / MIB


class Baseline:
    """The ml service of another git revision, from ``git archive``, on the same database."""

    def __init__(self, ref: str, env: dict[str, str], work: Path, workers: int) -> None:
        self.ref = ref
        self.src = work / "baseline"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **env,
            "STRATA_ML_PORT": str(self.port),
            "STRATA_ML_HOST": "127.0.0.1",
            "STRATA_ML_ENVIRONMENT": "development",
            "STRATA_ML_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "baseline-metrics"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Baseline:
        """Unpack the revision's ``services`` and serve it; wait for ``/livez``."""
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", self.ref, "services"],
            check=True,
            capture_output=True,
        ).stdout
        self.src.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(self.src, filter="data")
        log = (self.src / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.ml", "serve"],
            cwd=self.src,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/livez", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(f"baseline {self.ref} did not start: {self.src / 'serve.log'}")

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(60)
            self.process = None


def load_large(server: PostgresServer, db: str, cid: str) -> None:
    """LARGE_ROWS documents of ~0.9 MB, generated inside PostgreSQL (no client transfer)."""
    reps = LARGE_CHARS // 32
    server.psql(
        "INSERT INTO ml_documents (collection_id, id, data) SELECT "
        f"{cid}, 'L' || lpad(g::text, 6, '0'), jsonb_build_object('i', g, 'blob', "
        f"repeat(md5(g::text), {reps})) FROM generate_series(1, {LARGE_ROWS}) g",
        db,
    )
    server.psql("VACUUM ANALYZE ml_documents", db)


def curl_export(service: Served, token: str, name: str) -> int:
    """Lines of an export read by curl (a C client, as fast as the socket allows)."""
    pipeline = (
        f"curl -sSf -H 'Authorization: Bearer {token}' "
        f"{service.base_url}/v1/collections/{name}/export | wc -l"
    )
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], check=True, capture_output=True, text=True
    )
    return int(out.stdout)


def follow(client: httpx.Client, path: str, params: dict[str, str | int]) -> str:
    """Read a listing or sample to its end through next_cursor (old versions have none)."""
    got, calls, cursor = 0, 0, None
    while True:
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert body.status_code == 200, body.text
        items = body.json()["items"]
        got, calls = got + len(items), calls + 1
        cursor = body.json().get("next_cursor")
        if not cursor or ("limit" in params and got >= LARGE_ROWS):
            return f"{got} documents in {calls} answers"


class Figures:
    """Time and peak worker RSS growth of each read, per service, over rounds."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def measure(self, label: str, who: str, service: Served, action: Callable[[], object]) -> None:
        """Run ``action`` once while sampling RSS; print and keep the figures."""
        with PeakRss(service) as rss:
            started = time.perf_counter()
            result = action()
            elapsed = time.perf_counter() - started
        self.rows.setdefault((label, who), []).append((elapsed, rss.growth_mib))
        print(f"  {who:>8} {label}: {elapsed:.2f} s, RSS +{rss.growth_mib:.0f} MiB ({result})")

    def summary(self, who: list[str]) -> list[str]:
        """One line per read: median time and largest RSS growth of each service."""
        lines = []
        for label in dict.fromkeys(label for label, _ in self.rows):
            parts = []
            for w in who:
                runs = self.rows.get((label, w))
                if runs:
                    median = statistics.median(t for t, _ in runs)
                    parts.append(f"{w} {median:.2f} s / RSS +{max(m for _, m in runs):.0f} MiB")
            lines.append(f"  {label}: " + "; ".join(parts))
        return lines


def large_documents(
    server: PostgresServer,
    db: str,
    services: dict[str, Served],
    client: httpx.Client,
    token: str,
    small: tuple[str, int],
) -> list[str]:
    """Exports of small and large documents, pages and samples of large ones, per service."""
    client.put("/v1/collections/large")
    cid = server.psql("SELECT id FROM ml_collections WHERE name = 'large'", db).strip()
    load_large(server, db, cid)
    line = (
        """SELECT '{"id":' || to_json(id)::text || ',"collection":"large","data":' """
        """|| data::text || ',"version":' || version || ',"created_at":' """
        """|| to_json(created_at)::text || ',"updated_at":' || to_json(updated_at)::text """
        f"""|| '}}' FROM ml_documents WHERE collection_id = {cid} ORDER BY created_at, id"""
    )
    started = time.perf_counter()
    server.psql(f"\\copy ({line}) TO '/dev/null'", db)
    copy_large = time.perf_counter() - started
    print(f"\nlarge documents: {LARGE_ROWS} x ~{LARGE_CHARS / 1e6:.1f} MB")
    print(f"  psql \\copy of the large export's lines: {copy_large:.2f} s")
    figures = Figures()
    small_name, small_rows = small
    for _ in range(ROUNDS):
        for who, service in services.items():
            figures.measure(
                "export small", who, service, lambda s=service: curl_export(s, token, small_name)
            )
            figures.measure(
                "export large", who, service, lambda s=service: curl_export(s, token, "large")
            )
    docs, small_docs = "/v1/collections/large/documents", f"/v1/collections/{small_name}/documents"
    reads: list[tuple[str, str, dict[str, str | int]]] = [
        ("pages of large (limit=1000)", docs, {"limit": 1000}),
        (f"sample of large (n={LARGE_ROWS})", docs + ":sample", {"n": LARGE_ROWS, "seed": "b"}),
        ("page of small (limit=1000)", small_docs, {"limit": 1000}),
        ("sample of small (n=10000)", small_docs + ":sample", {"n": 10_000, "seed": "b"}),
    ]
    for who, service in services.items():
        with httpx.Client(base_url=service.base_url, headers=client.headers, timeout=600) as r:
            for label, path, params in reads:
                figures.measure(
                    label,
                    who,
                    service,
                    lambda r=r, path=path, params=params: follow(r, path, params),
                )
    lines = figures.summary(list(services))
    for who in services:
        runs = figures.rows[("export small", who)]
        rate = small_rows / statistics.median(t for t, _ in runs)
        lines.append(f"  export small {who}: {rate:,.0f} rows/s (median of {len(runs)})")
    if len(services) == 2:
        after, before = (statistics.median(t for t, _ in figures.rows[("export small", w)])
                         for w in services)  # fmt: skip
        lines.append(f"  export small throughput, this revision / baseline: {before / after:.2f}")
        after, before = (statistics.median(t for t, _ in figures.rows[("export large", w)])
                         for w in services)  # fmt: skip
        lines.append(f"  export large throughput, this revision / baseline: {before / after:.2f}")
    for who in services:
        t = statistics.median(t for t, _ in figures.rows[("export large", who)])
        lines.append(f"  export large {who}: vs psql \\copy of the same lines {copy_large / t:.2f}")
    return lines
