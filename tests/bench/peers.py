"""Start and stop the reference servers of the benchmarks (own process group each)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from services.devstack.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def peer(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, port: int
) -> Iterator[str]:
    """Run ``argv`` until the block ends; yields its base URL once ``port`` accepts."""
    log = (log_dir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        list(argv),
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, 60)
        except Exception as exc:
            raise RuntimeError(
                f"{name} did not start: {(log_dir / f'{name}.log').read_text()[-2000:]}"
            ) from exc
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def bare_flask(
    database_url: str, log_dir: Path, pool_size: int
) -> contextlib.AbstractContextManager[str]:
    """tests/bench/bare_flask.py under gunicorn as the service runs: gthread, 2 workers x 4."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4",
        "-b", f"127.0.0.1:{port}", "--keep-alive", "5", "tests.bench.bare_flask:create_app()",
    ]  # fmt: skip
    env = {"BARE_DATABASE_URL": database_url, "BARE_POOL_SIZE": str(pool_size)}
    return peer("bare-flask", argv, env, log_dir, port)


def bare_ml(dsn: str, log_dir: Path, workers: int) -> contextlib.AbstractContextManager[str]:
    """tests/bench/bare_ml.py: Sanic + asyncpg with the service's worker count."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.bench.bare_ml", "--port", str(port)]
    env = {"BARE_DATABASE_DSN": dsn, "BARE_WORKERS": str(workers)}
    return peer("bare-ml", argv, env, log_dir, port)
