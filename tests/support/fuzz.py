"""Schemathesis against a running service: every operation of its own ``/openapi.json``.

The CLI runs in a subprocess (one worker, fixed seed) with a fully scoped token and the
checks the project holds every service to; its JSON report says how many cases ran and
what failed, so a test can insist on both a minimum of cases and zero failures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
SEED = 20261201
MIN_CASES = 500


@dataclass(frozen=True)
class FuzzResult:
    """What one schemathesis run found."""

    exit_code: int
    report: dict[str, Any]
    output: str

    @property
    def generated(self) -> int:
        """Test cases generated and sent."""
        return int(self.report["test_cases"]["generated"])

    @property
    def failures(self) -> int:
        """Test cases with at least one failed check, plus errored cases."""
        cases = self.report["test_cases"]
        return int(cases["with_failures"]) + int(cases["errored"])

    def describe(self) -> str:
        """The CLI's own account of the run (failures with curl reproductions)."""
        return self.output[-20_000:]


def run_schemathesis(
    base_url: str, token: str, workdir: Path, *, max_examples: int = 60, seed: int = SEED
) -> FuzzResult:
    """Fuzz every operation of ``base_url``'s OpenAPI document; return the run's report."""
    report_dir = workdir / "schemathesis"
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
        "--output-truncate",
        "false",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=workdir, check=False
    )
    reports = sorted(report_dir.glob("*.json"))
    if not reports:
        raise AssertionError(f"schemathesis wrote no report:\n{done.stdout}\n{done.stderr}")
    report = json.loads(reports[-1].read_text())
    return FuzzResult(done.returncode, report, done.stdout + done.stderr)
