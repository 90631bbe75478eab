"""webdis (Debian's HTTP front for Redis, in C) as the cache's floor reference.

Not a dependency of anything: ``make bench-tools`` installs it; without it the reference is
skipped with a message instead of failing the whole benchmark.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.devstack.ports import free_port, wait_for_port
from services.devstack.redis import RedisServer


@dataclass(frozen=True)
class Webdis:
    """A running webdis (``url``, ``pid``), or why it is not running (``skipped``)."""

    url: str = ""
    pid: int = 0
    skipped: str = ""


@contextlib.contextmanager
def webdis(redis: RedisServer, work: Path, threads: int) -> Iterator[Webdis]:
    """webdis in front of ``redis`` on a free loopback port, ``threads`` threads."""
    binary = shutil.which("webdis")
    if binary is None:
        yield Webdis(skipped="webdis is not installed (apt-get install -y webdis)")
        return
    port = free_port()
    config = work / "webdis.json"
    config.write_text(
        json.dumps(
            {
                "redis_host": "127.0.0.1",
                "redis_port": redis.port,
                "redis_auth": redis.password,
                "http_host": "127.0.0.1",
                "http_port": port,
                "threads": threads,
                "daemonize": False,
                "database": 0,
                "verbosity": 1,
                "logfile": str(work / "webdis.log"),
            }
        )
    )
    process = subprocess.Popen([binary, str(config)], cwd=work, start_new_session=True)
    try:
        wait_for_port(port, 30)
        yield Webdis(url=f"http://127.0.0.1:{port}", pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
