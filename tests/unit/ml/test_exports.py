"""The per-worker export budget: slots are taken, refused with 429, and given back."""

from __future__ import annotations

import pytest

from services.common.problems import Problem
from services.ml.exports import ExportSlots


def test_slots_refuse_beyond_the_limit_and_come_back() -> None:
    slots = ExportSlots(limit=2, retry_after=7)
    with slots.take(), slots.take():
        assert slots.in_use == 2
        with pytest.raises(Problem) as raised, slots.take():
            pass
        problem = raised.value
        assert (problem.status, problem.slug) == (429, "too-many-exports")
        assert problem.headers == {"Retry-After": "7"}
        assert slots.in_use == 2  # a refusal takes nothing
    assert slots.in_use == 0
    with slots.take():
        assert slots.in_use == 1


def test_a_failed_export_gives_its_slot_back() -> None:
    slots = ExportSlots(limit=1, retry_after=1)
    with pytest.raises(RuntimeError), slots.take():
        raise RuntimeError("export failed")
    assert slots.in_use == 0
