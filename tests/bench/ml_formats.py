"""Export formats side by side (``make bench-ml``): NDJSON, gzip NDJSON and Parquet.

Each variant is read by curl (a C client, so the client is not what is measured) without
decoding (``size_download`` is the bytes on the wire), a few rounds each, while the peak RSS
growth of the workers is sampled. Parquet is compared with the NDJSON of the same
projection, in the same run: rows/s, bytes on the wire and worker memory, as ratios.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pyarrow.parquet as pq

from tests.bench.ml_memory import PeakRss, Served
from tests.bench.report import Comparison

ROUNDS = 3
FIELDS = "i,split,label,features"  # the training-example fields of bench_ml.document


@dataclass(frozen=True)
class Variant:
    """One way to export: its label, query parameters and Accept-Encoding."""

    label: str
    params: dict[str, str]
    encoding: str = "identity"


VARIANTS = (
    Variant("NDJSON", {}),
    Variant("NDJSON gzip", {}, "gzip"),
    Variant("Parquet (whole documents as JSON)", {"format": "parquet"}),
    Variant(f"NDJSON fields={FIELDS}", {"fields": FIELDS}),
    Variant(f"NDJSON gzip fields={FIELDS}", {"fields": FIELDS}, "gzip"),
    Variant(f"Parquet fields={FIELDS}", {"format": "parquet", "fields": FIELDS}),
)


@dataclass(frozen=True)
class Figure:
    """Median seconds, bytes on the wire and the largest worker RSS growth (MiB)."""

    seconds: float
    wire: int
    rss_mib: float


def _curl(url: str, token: str, encoding: str, out: str) -> int:
    """Bytes on the wire of one export (curl does not decode: no ``--compressed``)."""
    done = subprocess.run(
        [
            "curl", "-sSf", "-o", out, "-w", "%{size_download}",
            "-H", f"Authorization: Bearer {token}", "-H", f"Accept-Encoding: {encoding}", url,
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(float(done.stdout))


def measure(service: Served, token: str, name: str, variant: Variant) -> Figure:
    """``ROUNDS`` exports of ``variant``: the median time, the wire size, the peak RSS."""
    url = f"{service.base_url}/v1/collections/{name}/export?{urlencode(variant.params)}"
    runs: list[tuple[float, int, float]] = []
    for _ in range(ROUNDS):
        with PeakRss(service) as rss:
            started = time.perf_counter()
            wire = _curl(url, token, variant.encoding, "/dev/null")
            elapsed = time.perf_counter() - started
        runs.append((elapsed, wire, rss.growth_mib))
    return Figure(statistics.median(t for t, _, _ in runs), runs[0][1], max(m for _, _, m in runs))


def parquet_rows(service: Served, token: str, name: str) -> int:
    """Rows of a Parquet export as pyarrow reads the file back."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.parquet"
        query = urlencode({"format": "parquet", "fields": FIELDS})
        _curl(
            f"{service.base_url}/v1/collections/{name}/export?{query}", token, "identity", str(path)
        )
        rows: int = pq.ParquetFile(path).metadata.num_rows
        return rows


def export_formats(
    service: Served, token: str, name: str, rows: int
) -> tuple[list[str], list[Comparison]]:
    """Every variant's figures as lines, and the same-run comparisons for the table."""
    assert parquet_rows(service, token, name) == rows
    figures: dict[str, Figure] = {}
    lines = []
    for variant in VARIANTS:
        f = figures[variant.label] = measure(service, token, name, variant)
        lines.append(
            f"  {variant.label}: {rows / f.seconds:,.0f} rows/s, "
            f"{f.wire / 1e6:,.1f} MB on the wire, worker RSS +{f.rss_mib:.0f} MiB"
        )
    pairs = (
        ("Parquet (whole documents as JSON)", "NDJSON"),
        (f"Parquet fields={FIELDS}", f"NDJSON fields={FIELDS}"),
        (f"Parquet fields={FIELDS}", f"NDJSON gzip fields={FIELDS}"),
        ("NDJSON gzip", "NDJSON"),
    )
    comparisons = []
    for strata, reference in pairs:
        a, b = figures[strata], figures[reference]
        lines.append(
            f"  {strata} / {reference}: rows/s x{b.seconds / a.seconds:.2f}, "
            f"bytes x{a.wire / b.wire:.2f}, RSS growth {a.rss_mib:.0f} vs {b.rss_mib:.0f} MiB"
        )
        comparisons.append(
            Comparison(
                f"ml export {strata}, {rows:,} docs",
                rows / a.seconds,
                f"ml export {reference}",
                rows / b.seconds,
                unit="rows/s",
            )
        )
    return lines, comparisons
