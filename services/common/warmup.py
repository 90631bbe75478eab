"""The start-up connection every async worker opens before it serves (ml and cache).

Readiness pings from one worker at a time, so without a warm-up the other worker opened its
first store connection for a client's request: on a node starved by a rollout, that connect
(DNS, TCP, authentication) can outlast its timeout, and the request answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable


async def warm_up(ping: Callable[[], Awaitable[object]], logger: logging.Logger) -> bool:
    """Run ``ping`` once; True when the store answered.

    Never raises: when the store cannot be reached it logs a warning and returns False,
    and the worker starts anyway, unready, connecting on demand once the store is back.
    """
    try:
        await ping()
    except Exception as error:  # any failure: start unready, never refuse to start
        logger.warning("store not reachable at start-up: %s", type(error).__name__)
        return False
    return True
