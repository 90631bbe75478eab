"""``strata run`` (behind ``make run``): the printed examples work, Ctrl-C leaves nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


class Output:
    """Collects a process's output on a thread; wait for a line containing a marker."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, marker: str, after: int, timeout: float) -> str:
        """All output once ``after`` lines follow the first line containing ``marker``."""

        def ready() -> bool:
            hits = [i for i, line in enumerate(self.lines) if marker in line]
            return bool(hits) and len(self.lines) > hits[0] + after

        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                raise AssertionError(f"no {marker!r} in time:\n{''.join(self.lines)[-3000:]}")
            return "".join(self.lines)


def alive(p: psutil.Process) -> bool:
    """Still running and not a zombie; a process that ends between the two checks is not."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_run_prints_working_examples_and_ctrl_c_stops_everything() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from services.devstack.cli import main; main()",
            "run",
            "--port",
            "18701",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The marker, then per service a blank line, a URL, a token and its examples.
        output = Output(proc).wait_for("Ctrl-C stops everything", 15, 180)
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert len(descendants) >= 5  # PostgreSQL, Redis, three servers (plus their workers)
        exports = dict(re.findall(r"export (\w+_TOKEN)=(\S+)", output))
        assert set(exports) == {"CRITICAL_TOKEN", "ML_TOKEN", "CACHE_TOKEN"}
        commands = [
            line.strip()
            for line in output.splitlines()
            if line.strip().startswith(("curl ", "printf "))
        ]
        assert len(commands) >= 5
        env = {**os.environ, **exports}
        results = []
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            results.append(done.stdout)
        account = json.loads(results[0])
        assert (account["owner"], account["balance"]) == ("alice", 0)
        assert '"inserted":2' in results[2]
        assert len(results[3].strip().splitlines()) == 2  # the export streams both documents
        assert json.loads(results[-1])["value"] == "hello"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
    assert code == 0
    assert [p for p in descendants if alive(p)] == []
