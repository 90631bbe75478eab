"""``warm_up``: one ping before a worker serves, never a refusal to start."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.common.warmup import warm_up

LOGGER = logging.getLogger("strata.test.warmup")


async def _answers() -> None:
    return None


async def _refused() -> None:
    raise ConnectionRefusedError("no store here")


def test_a_store_that_answers_is_warm(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, LOGGER.name):
        assert asyncio.run(warm_up(_answers, LOGGER)) is True
    assert caplog.records == []


def test_a_store_that_is_down_logs_and_lets_the_worker_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, LOGGER.name):
        assert asyncio.run(warm_up(_refused, LOGGER)) is False
    assert [r.getMessage() for r in caplog.records] == [
        "store not reachable at start-up: ConnectionRefusedError"
    ]
