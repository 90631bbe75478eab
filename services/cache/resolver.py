"""Name resolution for Sentinel mode that never blocks anything but itself.

Sentinel names Redis nodes by DNS name (the chart announces pod names). A lookup of a pod
that was just deleted can hang for the resolver's whole timeout (seconds) instead of failing,
and under uvloop lookups run on libuv's small thread pool: a few hung ones would delay every
other lookup. So the follower resolves names here, in the background, with a deadline, and
at most one lookup per name is in flight; requests connect to the IP it found and never
resolve anything themselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable


class Resolver:
    """``resolve(host)``: an IP address within ``timeout`` seconds, or None."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: dict[str, asyncio.Future[list[tuple[object, ...]]]] = {}

    def _forget(self, host: str) -> Callable[[object], None]:
        def done(_: object) -> None:
            self._pending.pop(host, None)

        return done

    async def resolve(self, host: str) -> str | None:
        """The first address of ``host`` (an IP is returned as is); None if not in time."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return host
        lookup = self._pending.get(host)
        if lookup is None:
            loop = asyncio.get_running_loop()
            lookup = asyncio.ensure_future(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)  # type: ignore[arg-type]
            )
            self._pending[host] = lookup
            lookup.add_done_callback(self._forget(host))
        try:
            infos = await asyncio.wait_for(asyncio.shield(lookup), self.timeout)
        except (TimeoutError, OSError):
            return None
        return str(infos[0][4][0]) if infos else None  # type: ignore[index]
