"""The master raises the open-files limit for its workers, within the hard limit."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from services.critical.fdlimit import RESERVED

# The child lowers its own limits first (as a shell's ulimit would), then plans.
PROBE = (
    "import resource; from services.critical.fdlimit import plan; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); c = plan({wanted}); "
    "print(c.connections, c.soft_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
)


def _plan_under(soft: int, hard: int, wanted: int) -> list[int]:
    """Run ``plan(wanted)`` in a process with the given limits (this one's stay as they are)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(soft=soft, hard=hard, wanted=wanted)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(v) for v in out.split()]


@pytest.fixture
def hard() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4096 + RESERVED:
        pytest.skip(f"needs a hard open-files limit of {4096 + RESERVED}, this one is {hard}")
    return 4096 + RESERVED if hard == resource.RLIM_INFINITY else hard


def test_a_low_soft_limit_is_raised_for_the_connections_wanted(hard: int) -> None:
    connections, soft, in_force = _plan_under(1024, hard, 4096)
    assert connections == 4096
    assert soft == in_force == 4096 + RESERVED


def test_a_low_hard_limit_caps_the_connections() -> None:
    connections, soft, in_force = _plan_under(1024, 1024, 4096)
    assert (connections, soft, in_force) == (1024 - RESERVED, 1024, 1024)


def test_a_high_soft_limit_is_left_alone(hard: int) -> None:
    connections, soft, _ = _plan_under(hard, hard, 100)
    assert (connections, soft) == (100, hard)
