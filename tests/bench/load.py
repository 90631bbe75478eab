"""One HTTP load tool and one setting for Strata and every reference: wrk -t1 -c64."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

THREADS = 1
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in ")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def require_wrk() -> None:
    """Stop with the package to install when wrk is missing."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk (or make bench-tools)")


def wrk(
    url: str,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
    seconds: int = SECONDS,
) -> float:
    """Requests per second wrk reports for ``url``.

    Only 2xx answers count: a target that answers errors (a 503 when its pool wait runs
    out) would otherwise look fast; how many were not 2xx is printed. Connect/read/write
    errors fail the run. Timeouts (no answer within wrk's 2 s, a queue that is too long)
    are printed: they lower the figure by themselves.
    """
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    # Unmeasured first: pools fill, connections open, caches warm, for every target alike
    # (a cold pool's first burst of 64 otherwise times out in wrk's first 2 s).
    subprocess.run([*args, f"-d{WARMUP}s", url], check=True, capture_output=True)
    out = subprocess.run(
        [*args, f"-d{seconds}s", url], check=True, capture_output=True, text=True
    ).stdout
    rps, socket = _RPS.search(out), _SOCKET.search(out)
    if rps is None or (socket and any(map(int, socket.groups()[:3]))):
        raise RuntimeError(f"wrk against {url} failed:\n{out}")
    if socket:
        print(f"  ({socket.group(4)} requests to {url} timed out after 2 s)")
    return float(rps.group(1)) * good_share(out, url)


def good_share(out: str, url: str) -> float:
    """The share of 2xx answers in wrk's output ``out`` (printing how many were not)."""
    failed, total = _NON_2XX.search(out), _TOTAL.search(out)
    if failed is None or total is None:
        return 1.0
    print(f"  ({failed.group(1)} of {total.group(1)} answers from {url} were not 2xx)")
    return 1 - int(failed.group(1)) / int(total.group(1))


def random_path_script(path_format: str, keys: list[str], directory: Path) -> Path:
    """A wrk Lua script GETting ``path_format % key`` for a random key of ``keys`` each time."""
    script = directory / f"random-{abs(hash(path_format))}.lua"
    quoted = ",".join(f'"{k}"' for k in keys)
    script.write_text(
        f"local keys = {{{quoted}}}\n"
        "math.randomseed(os.time())\n"
        "request = function()\n"
        f'  return wrk.format("GET", string.format("{path_format}", keys[math.random(#keys)]))\n'
        "end\n"
    )
    return script
