"""Worker-count defaults derived from the container's CPU limit, not the host's cores."""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 cfs quota), or None if unlimited."""
    v2 = cgroup_root / "cpu.max"
    try:
        if v2.exists():
            quota, _, period = v2.read_text().strip().partition(" ")
            if quota != "max":
                return int(quota) / int(period or "100000")
            return None
        q1 = cgroup_root / "cpu" / "cpu.cfs_quota_us"
        p1 = cgroup_root / "cpu" / "cpu.cfs_period_us"
        if q1.exists() and p1.exists():
            quota_us = int(q1.read_text())
            if quota_us > 0:
                return quota_us / int(p1.read_text())
    except (OSError, ValueError):
        return None
    return None


def default_workers(maximum: int = 8) -> int:
    """One worker per allowed CPU (rounded up), at least 1 and at most ``maximum``."""
    limit = cpu_limit()
    cpus = math.ceil(limit) if limit else (os.cpu_count() or 1)
    return max(1, min(maximum, cpus))
