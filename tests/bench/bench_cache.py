"""Cache benchmark (not a test): GET and PUT through the service, next to its peers.

``python -m tests.bench.bench_cache`` (``make bench-cache``) starts a throwaway Redis, the
cache service (``python -m services.cache serve``, 2 workers, JWT auth on), a bare Sanic app
that makes the same Redis call with the same client settings and nothing else (no auth,
metrics, logging or validation), and webdis (Debian's C HTTP front for Redis, GET only).
wrk drives all three over HTTP with the same settings (``-t1 -c64``); redis-benchmark
drives Redis directly with the same commands. All run in the same invocation, one after
the other, so the figures are comparable as ratios (absolute numbers drift between runs
and machines). The table at the end holds the goals of issue 15.

Needs the Debian packages ``wrk`` and ``redis-tools`` (``redis-benchmark``), and
``webdis`` for that reference (``make bench-tools`` installs them; without webdis the
reference is skipped with a message).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import requests

from services.common.auth import mint_token
from services.common.settings import DEV_JWT_SECRET
from services.devstack.ports import free_port, wait_for_port
from services.devstack.redis import RedisServer
from tests.bench import load
from tests.bench.report import Comparison, table
from tests.bench.webdis import webdis
from tests.support.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
VALUE = {"user": 12345, "name": "benchmark", "tags": ["a", "b", "c"], "score": 0.5, "ok": True}
GET_KEY, PUT_KEY = "bench-get", "bench-put"
_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def bare_app() -> Any:
    """A Sanic app making the service's Redis calls and nothing else (the ceiling)."""
    from sanic import HTTPResponse, Request, Sanic

    from services.cache.settings import CacheSettings
    from services.cache.store import _GET_WITH_TTL, KV_PREFIX, make_pool

    app = Sanic("bench-bare", configure_logging=False)

    @app.before_server_start
    async def connect(app: Sanic[Any, Any]) -> None:
        from redis.asyncio import Redis

        app.ctx.redis = Redis(connection_pool=make_pool(CacheSettings()))
        app.ctx.script = app.ctx.redis.register_script(_GET_WITH_TTL)
        await app.ctx.redis.execute_command("SCRIPT", "LOAD", _GET_WITH_TTL)

    @app.get("/v1/kv/<key:path>")
    async def get(request: Request, key: str) -> HTTPResponse:
        found = await request.app.ctx.redis.execute_command(
            "EVALSHA", request.app.ctx.script.sha, 1, KV_PREFIX + key
        )
        return HTTPResponse(found[0], content_type="application/json")

    @app.put("/v1/kv/<key:path>")
    async def put(request: Request, key: str) -> HTTPResponse:
        await request.app.ctx.redis.execute_command("SET", KV_PREFIX + key, request.body, "EX", 600)
        return HTTPResponse(request.body, content_type="application/json")

    return app


def serve_bare(port: int, workers: int) -> None:
    """Run :func:`bare_app` like the service runs (multi-worker, uvloop)."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=bare_app)
    app = loader.load()
    app.prepare(host="127.0.0.1", port=port, workers=workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server process and all its children (the workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def wrk(
    url: str, seconds: int, connections: int, token: str, put: bool, server_pid: int
) -> dict[str, float]:
    """Requests/s, p99 (ms) and server CPU per request (us) from one wrk run.

    CPU per request hardly depends on other load on the machine, unlike requests/s.
    """
    script = Path(tempfile.mkdtemp()) / "request.lua"
    # A GET carries no body: with wrk.body = "" wrk would frame it with Content-Length: 0.
    body = json.dumps({"value": VALUE, "ttl": 600}) if put else None
    script.write_text(
        f'wrk.method = "{"PUT" if put else "GET"}"\n'
        + (f"wrk.body = {json.dumps(body)}\n" if body is not None else "")
        + 'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    args = [
        "wrk",
        f"-t{load.THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    cpu_before = cpu_seconds(server_pid)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server_pid) - cpu_before
    shutil.rmtree(script.parent)
    rps, p99 = _WRK_RPS.search(out), _WRK_P99.search(out)
    if not rps or not p99:
        raise RuntimeError(f"wrk run failed:\n{out}")
    # Only 2xx answers count (as in tests/bench/load.py); the others are reported.
    good = load.good_share(out, url)
    handled = float(rps.group(1)) * seconds
    return {
        "rps": float(rps.group(1)) * good,
        "p99_ms": float(p99.group(1)) * _UNIT[p99.group(2)],
        "cpu_us": cpu / handled * 1e6,
    }


def redis_benchmark(
    redis: RedisServer, requests_: int, connections: int, command: Sequence[str]
) -> dict[str, float]:
    """Requests/s and p99 (ms) of one command from redis-benchmark."""
    args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-n", str(requests_)]
    args += ["-c", str(connections), "--csv"]
    if redis.password:
        args += ["-a", redis.password]
    out = subprocess.run([*args, *command], capture_output=True, text=True, check=True).stdout
    # The test name column repeats the command unescaped, so split from the right.
    fields = [f.strip('"') for f in out.strip().splitlines()[-1].rsplit(",", 7)]
    return {"rps": float(fields[1]), "p99_ms": float(fields[6])}


def run(seconds: int, connections: int, workers: int, rounds: int) -> dict[str, dict[str, float]]:
    """Every measurement, keyed ``<target> <operation>``."""
    for tool in ("wrk", "redis-benchmark"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install -y wrk redis-tools")
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-cache-"))
    redis = RedisServer(password="bench-redis-password").start()
    env = {
        "STRATA_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "STRATA_CACHE_REDIS_PASSWORD": redis.password or "",
    }
    service = ServiceProcess("cache", env, tmp, workers=workers)
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_cache", "bare", "--port", str(bare_port)],
        env={**os.environ, **service.env, "STRATA_CACHE_WORKERS": str(workers)},
        cwd=ROOT,
        stdout=(tmp / "bare.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: dict[str, dict[str, float]] = {}
    try:
        service.start()
        wait_for_port(bare_port, 60)
        token = mint_token(
            key=DEV_JWT_SECRET, audience="strata-cache", scopes=["cache:read", "cache:write"]
        )
        headers = {"Authorization": f"Bearer {token}"}
        put = requests.put(
            f"{service.base_url}/v1/kv/{GET_KEY}",
            json={"value": VALUE},
            headers=headers,
            timeout=10,
        )
        put.raise_for_status()
        assert service.process is not None
        targets = {
            "service": (service.base_url, service.process.pid),
            "bare sanic": (f"http://127.0.0.1:{bare_port}", bare.pid),
        }
        with webdis(redis, tmp, workers) as front:
            if front.skipped:
                print(f"webdis reference skipped: {front.skipped}")
            else:
                series = [
                    wrk(f"{front.url}/GET/kv:{GET_KEY}", seconds, connections, token, False,
                        front.pid)
                    for _ in range(rounds)
                ]  # fmt: skip
                results["webdis GET"] = {
                    field: statistics.median(f[field] for f in series)
                    for field in ("rps", "p99_ms", "cpu_us")
                }
        # Interleaved rounds, median per figure: load from other work on the machine then
        # hits both targets alike instead of skewing one of them.
        runs: dict[str, list[dict[str, float]]] = {}
        for _ in range(rounds):
            for name, (base, pid) in targets.items():
                for op, key in (("GET", GET_KEY), ("PUT", PUT_KEY)):
                    url = f"{base}/v1/kv/{key}"
                    figures = wrk(url, seconds, connections, token, op == "PUT", pid)
                    runs.setdefault(f"{name} {op}", []).append(figures)
        for name, series in runs.items():
            results[name] = {
                field: statistics.median(f[field] for f in series)
                for field in ("rps", "p99_ms", "cpu_us")
            }
        sha = subprocess.run(
            ["redis-cli", "-p", str(redis.port), "-a", redis.password or "", "--no-auth-warning",
             "SCRIPT", "LOAD", _get_script_source()],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        count = max(100_000, int(results["bare sanic GET"]["rps"] * seconds * 10))
        value = json.dumps(VALUE)
        results["redis-benchmark GET"] = redis_benchmark(
            redis, count, connections, ["GET", "kv:" + GET_KEY]
        )
        results["redis-benchmark EVALSHA"] = redis_benchmark(
            redis, count, connections, ["EVALSHA", sha, "1", "kv:" + GET_KEY]
        )
        results["redis-benchmark SET"] = redis_benchmark(
            redis, count, connections, ["SET", "kv:" + PUT_KEY, value, "EX", "600"]
        )
    finally:
        service.stop()
        os.killpg(bare.pid, 15)
        bare.wait(30)
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _get_script_source() -> str:
    from services.cache.store import _GET_WITH_TTL

    return _GET_WITH_TTL


def report(results: dict[str, dict[str, float]]) -> str:
    """A table of the figures and the ratios that matter."""
    lines = [f"{'target':<26}{'req/s':>12}{'p99 ms':>10}{'server CPU us/req':>20}"]
    lines += [
        f"{name:<26}{r['rps']:>12.0f}{r['p99_ms']:>10.2f}"
        + (f"{r['cpu_us']:>20.0f}" if "cpu_us" in r else "")
        for name, r in results.items()
    ]

    def ratio(a: str, b: str) -> str:
        return f"{results[a]['rps'] / results[b]['rps']:.2f}"

    lines += [
        "",
        "throughput ratios (higher is better for the first):",
        f"  service/bare sanic      GET {ratio('service GET', 'bare sanic GET')}"
        f"   PUT {ratio('service PUT', 'bare sanic PUT')}",
        f"  service/redis-benchmark GET {ratio('service GET', 'redis-benchmark EVALSHA')} "
        f"(vs EVALSHA), {ratio('service GET', 'redis-benchmark GET')} (vs GET)"
        f"   PUT {ratio('service PUT', 'redis-benchmark SET')}",
        f"  bare/redis-benchmark    GET {ratio('bare sanic GET', 'redis-benchmark EVALSHA')}"
        f"   PUT {ratio('bare sanic PUT', 'redis-benchmark SET')}",
        "server CPU per request, service/bare sanic (lower is better): GET "
        f"{results['service GET']['cpu_us'] / results['bare sanic GET']['cpu_us']:.2f}"
        f"   PUT {results['service PUT']['cpu_us'] / results['bare sanic PUT']['cpu_us']:.2f}",
        f"p99 service/bare sanic: GET "
        f"{results['service GET']['p99_ms'] / results['bare sanic GET']['p99_ms']:.2f}"
        f"   PUT {results['service PUT']['p99_ms'] / results['bare sanic PUT']['p99_ms']:.2f}",
    ]
    return "\n".join(lines)


def goals(results: dict[str, dict[str, float]]) -> str:
    """The cache GET beside its references, with the goals of issue 15."""
    strata = results["service GET"]["rps"]
    front = results.get("webdis GET")
    return table(
        [
            Comparison("cache GET /v1/kv/{key}", strata, "bare Sanic + redis.asyncio",
                       results["bare sanic GET"]["rps"], goal=0.9),
            Comparison("cache GET /v1/kv/{key}", strata, "webdis (C)",
                       front["rps"] if front else None, goal=0.4,
                       skipped="" if front else "webdis not installed: apt-get install -y webdis"),
        ]
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, internally, the bare app)."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_cache")
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "bare"])
    parser.add_argument("--port", type=int, default=0, help="bare mode: port to listen on")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.mode == "bare":
        serve_bare(args.port, int(os.environ.get("STRATA_CACHE_WORKERS", "2")))
        return 0
    results = run(args.seconds, args.connections, args.workers, args.rounds)
    print(report(results))
    print(goals(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
