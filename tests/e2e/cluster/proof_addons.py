"""What the proofs that run on cluster add-ons (proof_ingress.py, proof_monitoring.py) share:
the add-on settings kind.sh exports, and polling a condition the cluster reaches in time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx


def need(name: str) -> str:
    """The value of an add-on setting (tests/e2e/kind/build-addons.sh prints them)."""
    value = os.environ.get(name, "")
    if not value:
        raise AssertionError(f"{name} is not set (tests/e2e/kind/build-addons.sh prints it)")
    return value


def wait_until(
    what: str, probe: Callable[[], bool | str], timeout: float, every: float = 1.0
) -> float:
    """Poll ``probe`` (True when reached, else a description of the state) until it is True;
    the seconds that took. An HTTP error or a failed assertion of the probe counts as not yet
    (e.g. Traefik's default certificate before a route exists)."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout:
        try:
            last = probe()
        except (httpx.HTTPError, AssertionError) as e:
            last = f"{type(e).__name__}: {e}"
        if last is True:
            return time.monotonic() - t0
        time.sleep(every)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last})")
