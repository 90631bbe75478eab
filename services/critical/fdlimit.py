"""Open-file limit versus connections: every client connection costs a worker a descriptor.

Containers usually start with a soft ``RLIMIT_NOFILE`` of 1,048,576, but a shell, a CI
runner or a systemd unit may give 1,024, which thousands of slow clients exhaust: accept()
then fails with EMFILE, and so would the database pool's next connection. The master
raises the soft limit (inherited by the workers it forks) as far as the hard limit
allows, and each worker serves at most as many connections as that leaves room for.
"""

from __future__ import annotations

import resource
from typing import NamedTuple

#: Descriptors a worker needs besides client connections: listeners, the database pool,
#: the metrics files, logs, pipes, and the interpreter's own.
RESERVED = 256


class Capacity(NamedTuple):
    """What the open-file limit allows."""

    connections: int  # per worker, at most the wanted number
    soft_limit: int  # RLIMIT_NOFILE in force now
    hard_limit: int


def plan(wanted_connections: int) -> Capacity:
    """Raise the soft limit toward ``wanted_connections + RESERVED``; say what fits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted_connections + RESERVED
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    room = needed if soft == resource.RLIM_INFINITY else soft - RESERVED
    return Capacity(max(1, min(wanted_connections, room)), soft, hard)
