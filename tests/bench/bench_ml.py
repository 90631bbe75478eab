"""``make bench-ml``: the ml service's bulk paths next to PostgreSQL's own COPY (a benchmark).

Starts a throwaway PostgreSQL and the ml service (2 workers unless STRATA_ML_WORKERS),
then, on 1,000,000 documents (BENCH_ML_ROWS to change):

* ingest: ``\\copy ... FROM`` by psql vs HTTP ``documents:bulk`` (10,000 per request,
  two clients so both workers work), each into an empty table with the same indexes;
* GET one document: the service (JWT auth on) vs a bare Sanic + asyncpg handler doing one
  SELECT by key (tests/bench/bare_ml.py, same worker count), ``wrk -t1 -c64`` on both;
* export: ``\\copy (SELECT ...) TO`` by psql vs HTTP ``export`` of the same rows;
* export formats: Parquet vs NDJSON (and gzip NDJSON) of the same rows and projection,
  rows/s, bytes on the wire and worker RSS growth (tests/bench/ml_formats.py);
* large documents (200 x ~0.9 MB): the peak RSS growth of a worker and the time of
  exports, pages and samples, next to small documents (tests/bench/ml_memory.py); with
  ``BENCH_ML_BASELINE=<git revision>`` the same reads on that revision's service, in the
  same run, for before/after figures;
* EXPLAIN (ANALYZE, BUFFERS) of a filtered listing and of the export query;
* with psycopg 3 installed, a short asyncpg-vs-psycopg comparison under SQLAlchemy.

Prints the figures, then one table of Strata beside its same-run references with the
goals of issue 15 (tests/bench/report.py). Absolute numbers drift between runs; the
ratios are the figures to compare.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from services.common.auth import mint_token
from services.common.settings import DEV_JWT_SECRET
from services.devstack.postgres import PostgresServer
from services.ml.settings import MlDatabaseSettings
from services.ml.store.schema import migrate
from tests.bench import load, peers
from tests.bench.ml_formats import export_formats
from tests.bench.ml_memory import Baseline, Served, large_documents
from tests.bench.report import Comparison, table
from tests.support.process import ServiceProcess

ROWS = int(os.environ.get("BENCH_ML_ROWS", "1000000"))
BATCH = 10_000
ROLE, PASSWORD, DB = "strata_ml", "bench-pw", "strata_ml"  # the owner (migrate, psql, drivers)
APP_ROLE, APP_PASSWORD = "strata_ml_app", "bench-app-pw"  # the runtime role the service uses
SPLITS = ("train", "valid", "test")


def document(i: int) -> str:
    """A training-example-like document (~200 bytes)."""
    return json.dumps(
        {
            "i": i,
            "split": SPLITS[i % 10 % 3],
            "label": i % 10,
            "features": [round((i * 7919 % 1000) / 1000, 3), i % 97, i % 13, (i * 31) % 101],
            "meta": {"source": f"cam-{i % 50}", "w": 640 + i % 7, "h": 480 + i % 5},
        },
        separators=(",", ":"),
    )


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.2f} s")
    return elapsed


def psql(server: PostgresServer, sql: str) -> str:
    return server.psql(sql, DB)


def main() -> None:
    """Run the whole benchmark and print the figures."""
    server = PostgresServer().start()
    work = Path(tempfile.mkdtemp(prefix="bench-ml-"))
    work.chmod(0o755)
    service: ServiceProcess | None = None
    try:
        server.psql(f"CREATE ROLE {ROLE} LOGIN CREATEROLE PASSWORD '{PASSWORD}'")
        server.psql(f"CREATE DATABASE {DB} OWNER {ROLE}")
        env = {
            "STRATA_ML_DATABASE_HOST": "127.0.0.1",
            "STRATA_ML_DATABASE_PORT": str(server.port),
            "STRATA_ML_DATABASE_NAME": DB,
            "STRATA_ML_DATABASE_USER": APP_ROLE,
            "STRATA_ML_DATABASE_PASSWORD": APP_PASSWORD,
            "STRATA_ML_MIGRATION_USER": ROLE,
            "STRATA_ML_MIGRATION_PASSWORD": PASSWORD,
        }
        settings = MlDatabaseSettings(
            database_port=server.port,
            database_host="127.0.0.1",
            database_user=APP_ROLE,
            database_password=APP_PASSWORD,
            migration_user=ROLE,
            migration_password=PASSWORD,
        )
        asyncio.run(migrate(settings))
        workers = int(os.environ.get("STRATA_ML_WORKERS", "2"))
        service = ServiceProcess("ml", env, work, workers=workers).start()
        token = mint_token(
            key=DEV_JWT_SECRET,
            audience="strata-ml",
            scopes=["docs:read", "docs:write", "collections:admin"],
        )
        client = httpx.Client(
            base_url=service.base_url, timeout=300, headers={"Authorization": f"Bearer {token}"}
        )
        for name in ("copyload", "httpload"):
            client.put(f"/v1/collections/{name}")
        copy_cid = psql(server, "SELECT id FROM ml_collections WHERE name = 'copyload'").strip()

        print(f"generating {ROWS} documents ...")
        lines = [document(i) for i in range(ROWS)]
        tsv = work / "docs.tsv"
        with tsv.open("w") as out:  # COPY text format: no tabs/backslashes in these documents
            for i, line in enumerate(lines):
                out.write(f"{copy_cid}\tc{i:08d}\t{line}\n")
        tsv.chmod(0o644)

        print("ingest")
        copy_in = timed(
            "psql \\copy FROM",
            lambda: psql(server, f"\\copy ml_documents (collection_id, id, data) FROM '{tsv}'"),
        )
        psql(server, "TRUNCATE ml_documents")
        psql(server, "CHECKPOINT")
        bodies = ["\n".join(lines[i : i + BATCH]).encode() for i in range(0, ROWS, BATCH)]
        del lines

        def post(body: bytes) -> None:
            r = client.post(
                "/v1/collections/httpload/documents:bulk",
                content=body,
                headers={"content-type": "application/x-ndjson"},
            )
            assert r.status_code == 201, r.text

        def ingest() -> None:
            with ThreadPoolExecutor(max(2, workers)) as pool:
                list(pool.map(post, bodies))

        http_in = timed("HTTP documents:bulk", ingest)
        bodies.clear()
        psql(server, "VACUUM ANALYZE ml_documents")
        http_cid = psql(server, "SELECT id FROM ml_collections WHERE name = 'httpload'").strip()
        get_strata, get_bare = point_reads(server, service, token, work, workers)

        print("export")
        order = f"FROM ml_documents WHERE collection_id = {http_cid} ORDER BY created_at, id"
        copy_data = timed(
            "psql \\copy (SELECT data ...) TO",
            lambda: psql(server, f"\\copy (SELECT data {order}) TO '/dev/null'"),
        )
        # The service's own line expression (services/ml/store/query.py, export_sql).
        line_sql = (
            """SELECT '{"id":' || to_json(id)::text || ',"collection":"httpload","data":' """
            """|| data::text || ',"version":' || version || ',"created_at":' """
            """|| to_json(created_at)::text || ',"updated_at":' || to_json(updated_at)::text """
            """|| '}'"""
        )
        copy_lines = timed(
            "psql \\copy (SELECT <the service's line>) TO",
            lambda: psql(server, f"\\copy ({line_sql} {order}) TO '/dev/null'"),
        )
        exported = 0

        def export() -> None:
            # curl and wc, C clients like psql, so the client is not what is measured.
            nonlocal exported
            pipeline = (
                f"curl -sSf -H 'Authorization: Bearer {token}' "
                f"{service.base_url}/v1/collections/httpload/export | wc -l"
            )
            out = subprocess.run(
                ["bash", "-o", "pipefail", "-c", pipeline],
                check=True,
                capture_output=True,
                text=True,
            )
            exported = int(out.stdout)

        http_out = timed("HTTP export (curl)", export)
        assert exported == ROWS, exported
        print("export formats")
        format_lines, format_rows = export_formats(service, token, "httpload", ROWS)
        services: dict[str, Served] = {"this": service}
        ref = os.environ.get("BENCH_ML_BASELINE")
        if ref:
            # The baseline may predate the role split: it connects as the owner.
            old_env = {
                **env,
                "STRATA_ML_DATABASE_USER": ROLE,
                "STRATA_ML_DATABASE_PASSWORD": PASSWORD,
            }
            baseline = Baseline(ref, old_env, work, workers).start()
            services["baseline"] = baseline
        try:
            large = large_documents(server, DB, services, client, token, ("httpload", ROWS))
        finally:
            if ref:
                baseline.stop()

        print(f"\nresults for {ROWS} documents ({workers} workers)")
        print(
            f"  ingest: COPY {ROWS / copy_in:,.0f} rows/s, service {ROWS / http_in:,.0f} rows/s,"
            f" ratio {copy_in / http_in:.2f}"
        )
        print(
            f"  export: COPY data {ROWS / copy_data:,.0f} rows/s, COPY lines "
            f"{ROWS / copy_lines:,.0f} rows/s, service {ROWS / http_out:,.0f} rows/s,"
            f" ratio {copy_data / http_out:.2f} (vs data) / {copy_lines / http_out:.2f}"
            " (vs the same lines)"
        )
        print(
            table(
                [
                    Comparison("ml GET one document", get_strata, "bare Sanic + asyncpg",
                               get_bare, goal=0.7),
                    Comparison(f"ml export NDJSON, {ROWS:,} docs", ROWS / http_out,
                               "psql \\copy of the export's own SQL", ROWS / copy_lines,
                               unit="rows/s", goal=0.8),
                    Comparison(f"ml bulk ingest, {ROWS:,} docs", ROWS / http_in,
                               "\\copy into the same table and indexes", ROWS / copy_in,
                               unit="rows/s", goal=0.7),
                    *format_rows,
                ]
            )
        )  # fmt: skip
        print(f"\nexport formats, {ROWS:,} documents (median of 3; ratios are same-run)")
        print("\n".join(format_lines))
        print(f"\n{len(large)} figures of large documents (median time / largest RSS growth)")
        print("\n".join(large))

        print("\nEXPLAIN: selective filtered listing (first page; 2% of rows match)")
        flt = json.dumps({"split": "valid", "label": 4, "meta": {"source": "cam-14"}})
        print(
            psql(
                server,
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, data::text, version,"
                " created_at, updated_at FROM ml_documents WHERE collection_id = "
                f"{http_cid} AND data @> '{flt}'::jsonb ORDER BY created_at, id LIMIT 101",
            )
        )
        print("EXPLAIN: very selective filtered listing (one row matches)")
        print(
            psql(
                server,
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, data::text, version,"
                " created_at, updated_at FROM ml_documents WHERE collection_id = "
                f"{http_cid} AND data @> '{{\"i\": 123456}}'::jsonb "
                "ORDER BY created_at, id LIMIT 101",
            )
        )
        print("EXPLAIN: unselective filtered listing (first page; 40% of rows match)")
        print(
            psql(
                server,
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, data::text FROM "
                f"ml_documents WHERE collection_id = {http_cid} AND data @> "
                '\'{"split": "train"}\'::jsonb ORDER BY created_at, id LIMIT 101',
            )
        )
        print("EXPLAIN: export")
        print(psql(server, f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {line_sql} {order}"))
        drivers(server)
    finally:
        if service is not None:
            service.stop()
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def point_reads(
    server: PostgresServer, service: ServiceProcess, token: str, work: Path, workers: int
) -> tuple[float, float]:
    """Requests/s of GET one document: the service, then the bare Sanic + asyncpg peer."""
    ids = psql(
        server,
        "SELECT d.id FROM ml_documents d JOIN ml_collections c ON c.id = d.collection_id "
        "WHERE c.name = 'httpload' ORDER BY random() LIMIT 1000",
    ).split()
    script = load.random_path_script("/v1/collections/httpload/documents/%s", ids, work)
    auth = {"Authorization": f"Bearer {token}"}
    print(f"GET one document: {load.SECONDS}s each, wrk -t{load.THREADS} -c{load.CONNECTIONS}")
    strata = load.wrk(service.base_url, auth, script)
    dsn = f"postgresql://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{server.port}/{DB}"
    with peers.bare_ml(dsn, work, workers) as bare:
        reference = load.wrk(bare, auth, script)
    print(f"  service {strata:,.0f} req/s, bare Sanic + asyncpg {reference:,.0f} req/s")
    return strata, reference


def drivers(server: PostgresServer) -> None:
    """asyncpg vs psycopg 3 under SQLAlchemy asyncio (skipped without psycopg)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("driver comparison skipped: psycopg (3) is not installed")
        return
    print("\ndriver comparison (SQLAlchemy asyncio, one connection, same queries)")
    asyncio.run(compare(server.port))


async def compare(port: int, rounds: int = 3) -> None:
    """Point reads, a 100k-row read, streaming and COPY; drivers alternate, medians shown."""
    import statistics

    results: dict[str, dict[str, list[float]]] = {"asyncpg": {}, "psycopg": {}}
    for _ in range(rounds):
        for driver in results:
            for metric, value in (await measure(driver, port)).items():
                results[driver].setdefault(metric, []).append(value)
    for driver, metrics in results.items():
        shown = "; ".join(f"{m} {statistics.median(v):,.0f}/s" for m, v in metrics.items())
        print(f"  {driver}: {shown}")


async def measure(driver: str, port: int) -> dict[str, float]:
    """One round of the driver comparison (rows or statements per second)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        f"postgresql+{driver}://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DB}", pool_size=1
    )
    out: dict[str, float] = {}
    by_id = text("SELECT data FROM ml_documents WHERE collection_id = :c AND id = :i")
    async with engine.connect() as conn:
        cid = await conn.scalar(text("SELECT id FROM ml_collections WHERE name='httpload'"))
        ids = (
            (
                await conn.execute(
                    text("SELECT id FROM ml_documents WHERE collection_id = :c LIMIT 2000"),
                    {"c": cid},
                )
            )
            .scalars()
            .all()
        )
        started = time.perf_counter()
        for doc_id in ids:
            await conn.execute(by_id, {"c": cid, "i": doc_id})
        out["point reads"] = len(ids) / (time.perf_counter() - started)
        started = time.perf_counter()
        rows = (
            await conn.execute(
                text("SELECT data FROM ml_documents WHERE collection_id = :c LIMIT 100000"),
                {"c": cid},
            )
        ).all()
        out["100k JSONB rows decoded"] = len(rows) / (time.perf_counter() - started)
        started = time.perf_counter()
        streamed = 0
        result = await conn.stream(
            text(
                "SELECT data::text FROM ml_documents WHERE collection_id = :c "
                "ORDER BY created_at, id LIMIT 300000"
            ),
            {"c": cid},
        )
        async for part in result.partitions(2000):
            streamed += len(part)
        out["server-side stream (text)"] = streamed / (time.perf_counter() - started)
        raw = (await conn.get_raw_connection()).driver_connection
        records = [(cid, f"x{i:08d}", document(i)) for i in range(100_000)]
        await conn.execute(text("SELECT 1"))  # COPY inside the connection's transaction
        started = time.perf_counter()
        if driver == "asyncpg":
            await raw.copy_records_to_table(
                "ml_documents", records=records, columns=["collection_id", "id", "data"]
            )
        else:
            async with (
                raw.cursor() as cur,
                cur.copy("COPY ml_documents (collection_id, id, data) FROM STDIN") as copy,
            ):
                for record in records:
                    await copy.write_row(record)
        out["COPY 100k"] = len(records) / (time.perf_counter() - started)
        await conn.rollback()
    await engine.dispose()
    return out


if __name__ == "__main__":
    main()
