"""The one table every benchmark prints: Strata beside its same-run reference and the goal.

Absolute figures drift by up to 50% between runs on a shared machine; the ratio of two
figures taken in the same run, one after the other, is what each goal (issue 15) is about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    """Strata's figure on one path next to one reference measured in the same run."""

    path: str
    strata: float
    reference: str
    reference_value: float | None  # None: the reference could not run (``skipped`` says why)
    unit: str = "req/s"
    goal: float | None = None  # the minimum ratio strata / reference, if the issue sets one
    skipped: str = ""
    reference_unit: str = ""  # when it differs from ``unit`` (pgbench counts transactions)

    @property
    def ratio(self) -> float | None:
        """strata / reference, or None when the reference did not run."""
        if not self.reference_value:
            return None
        return self.strata / self.reference_value

    @property
    def verdict(self) -> str:
        """``met``, ``not met``, or ``-`` (no goal, or no reference)."""
        if self.goal is None or self.ratio is None:
            return "-"
        return "met" if self.ratio >= self.goal else "not met"


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.0f} {unit}"


def table(rows: Iterable[Comparison]) -> str:
    """A Markdown table: path, Strata, reference, ratio, goal, met/not met."""
    lines = [
        "| path | Strata | reference (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = f"{row.reference}: " + (
            f"skipped ({row.skipped})"
            if row.skipped
            else _figure(row.reference_value, row.reference_unit or row.unit)
        )
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        goal = "-" if row.goal is None else f">= {row.goal:.2f}"
        lines.append(
            f"| {row.path} | {_figure(row.strata, row.unit)} | {reference} | {ratio} | {goal} "
            f"| {row.verdict} |"
        )
    return "\n".join(lines)
