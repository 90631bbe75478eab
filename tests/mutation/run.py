"""``make mutation``: mutmut over the modules whose mistakes cost the most, one at a time.

Each target is one source file and the tests that exercise it in process (mutmut traces
which test reaches which function, and runs only those per mutant; code run by a server
subprocess is invisible to it). A target runs in its own scratch copy of the repository
under ``build/mutation/<name>`` with a generated ``[tool.mutmut]`` section, so targets
keep separate results and test selections. One PostgreSQL and one Redis serve every
session of the run (tests/integration/conftest.py attaches to them), instead of one
started per mutant.

    python -m tests.mutation.run [TARGET ...] [--max-children N]

prints, per target, the mutants killed (or timed out), survived and untested, and the
score; survivors are listed with ``mutmut show <name>`` in the target's directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from services.devstack.postgres import PostgresServer
from services.devstack.redis import RedisServer
from tests.integration.conftest import REDIS_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "mutation"
# Statuses that mean a test noticed the mutant.
DETECTED = {"killed", "timeout", "caught by type check"}


@dataclass(frozen=True)
class Target:
    """A source file and the tests that run it in process."""

    source: str
    tests: tuple[str, ...]


_CRITICAL = "tests/integration/critical/"
TARGETS = {
    "ledger": Target(
        "services/critical/ledger.py",
        tuple(
            _CRITICAL + name
            for name in (
                "test_accounts.py",
                "test_transfers.py",
                "test_movements.py",
                "test_external_accounts.py",
                "test_query_parameters.py",
            )
        ),
    ),
    "idempotency": Target(
        "services/critical/idempotency.py",
        tuple(
            _CRITICAL + name
            for name in (
                "test_transfers.py",
                "test_movements.py",
                "test_hostile_input.py",
                # A replay's no-op write: only a missing standby shows whether it happened.
                "test_synchronous_commit.py",
            )
        ),
    ),
    "cache-store": Target(
        "services/cache/store.py",
        ("tests/unit/cache/test_store.py", "tests/integration/cache/test_store.py"),
    ),
    "ml-query": Target(
        "services/ml/store/query.py",
        ("tests/unit/ml/test_store_sql.py", "tests/integration/ml/test_query_sql.py"),
    ),
}


def _toml_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def prepare(name: str, target: Target) -> Path:
    """A scratch copy of services/, tests/ and pyproject.toml configured for ``target``."""
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for tree in ("services", "tests"):
        shutil.copytree(ROOT / tree, work / tree, ignore=ignore)
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["services"]\n'
        f"only_mutate = {_toml_list([target.source])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(target.tests)}\n"
        # A fixed order (mutmut reruns the tests of one function per mutant) and the first
        # failure is enough to kill a mutant.
        'pytest_add_cli_args = ["-p", "no:randomly", "-x", "-q", "-p", "no:cacheprovider"]\n'
        "use_git_change_detection = false\n"
        # mutmut's wall-clock limit is (estimated test time + 1 s) x multiplier (default 15).
        # On a loaded machine that fired for mutants that provably change nothing (a zip()
        # of two pairs losing strict=True): 49 of 387 ledger "timeouts", scored as detected.
        # A kill by a failing test is what the score should count.
        "timeout_multiplier = 60.0\n"
    )
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)
    return work


def results(work: Path) -> Counter[str]:
    """How many mutants ended in each status (``mutmut results --all true``)."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    statuses: Counter[str] = Counter()
    for line in out.splitlines():
        if ": " in line:
            statuses[line.rsplit(": ", 1)[1].strip()] += 1
    return statuses


def score(statuses: Counter[str]) -> str:
    """``killed/total (percent)`` with the other statuses named."""
    total = sum(statuses.values())
    detected = sum(n for status, n in statuses.items() if status in DETECTED)
    percent = 100.0 * detected / total if total else 0.0
    rest = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()) if s not in DETECTED)
    return f"{detected}/{total} detected ({percent:.1f}%)" + (f"; {rest}" if rest else "")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen targets (all by default) one after another; print each score."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGETS))
    parser.add_argument("--max-children", type=int, default=1)
    args = parser.parse_args(argv)
    chosen = args.targets or list(TARGETS)
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    postgres = PostgresServer().start()
    redis = RedisServer(password=REDIS_PASSWORD).start()
    env = {
        **os.environ,
        "STRATA_TEST_POSTGRES": f"{postgres.port}:{postgres.base}",
        "STRATA_TEST_REDIS": f"{redis.port}:{redis.base}",
    }
    summary = []
    try:
        for name in chosen:
            work = prepare(name, TARGETS[name])
            mutmut = str(Path(sys.executable).with_name("mutmut"))
            command = [mutmut, "run", "--max-children", str(args.max_children)]
            subprocess.run(command, cwd=work, env=env, check=False)
            summary.append(f"{name:12} {TARGETS[name].source:36} {score(results(work))}")
            print(summary[-1], flush=True)
    finally:
        redis.stop()
        postgres.stop()
    print("\nmutation scores:\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
