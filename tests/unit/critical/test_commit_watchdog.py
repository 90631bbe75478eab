"""The commit watchdog cancels exactly the commits still running at their deadline."""

from __future__ import annotations

import threading

from services.critical.commit_guard import CommitWatchdog


class Connection:
    """Stands in for a psycopg2 connection: records the cancel the watchdog sends."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


def test_an_earlier_deadline_wakes_a_watchdog_sleeping_until_a_later_one() -> None:
    # arm() wakes the thread only for a deadline earlier than the one it sleeps until.
    watchdog = CommitWatchdog(0.05)
    slow, fast = Connection(), Connection()
    watchdog.arm(slow, extra=3600)
    watchdog.arm(fast)
    assert fast.cancelled.wait(10)
    assert not slow.cancelled.is_set()
    watchdog.disarm(slow)


def test_a_disarmed_commit_is_never_cancelled_and_a_later_one_still_is() -> None:
    watchdog = CommitWatchdog(0.05)
    done, late = Connection(), Connection()
    watchdog.arm(done)
    watchdog.disarm(done)
    watchdog.arm(late, extra=0.05)
    assert late.cancelled.wait(10)
    assert not done.cancelled.is_set()
