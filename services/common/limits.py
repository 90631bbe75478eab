"""Integer bounds the services share: PostgreSQL bigint and Redis counters are signed 64-bit."""

from __future__ import annotations

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
