"""Insights contract: report filters, the report shape and its chart.

Every report is aggregates only: no cell, title or note ever carries PHI. Money columns hold
integer cents and their names end in ``_cents``. The row-level drill-down (account ids with
masked labels) is a separate, audited call in ``insight.service.accounts_for``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from carecollect.errors import BadInput

ChartKind = Literal["line", "bar", "stacked-bar", "doughnut"]
Cell = str | int | float | None


@dataclass(frozen=True)
class ReportFilters:
    """Half-open period [period_start, period_end) in the organization's time zone.

    ``location_id`` keeps accounts of that location; ``campaign_id`` keeps accounts ever
    enrolled in that campaign (cadence), and for outreach metrics, that campaign's attempts.
    """

    period_start: date
    period_end: date
    location_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.period_end <= self.period_start:
            raise BadInput("period_end must be after period_start")
        if (self.period_end - self.period_start).days > 3660:
            raise BadInput("the period may span at most ten years")


@dataclass(frozen=True)
class ChartDataset:
    label: str
    values: list[float]


@dataclass(frozen=True)
class ChartSpec:
    kind: ChartKind
    labels: list[str]
    datasets: list[ChartDataset]


@dataclass(frozen=True)
class Report:
    key: str
    title: str
    description: str
    columns: list[str]
    rows: list[list[Cell]]
    chart: ChartSpec | None
    notes: list[str]
    generated_at: datetime
    # Values of the first column that a drill-down accepts as ``bucket`` (empty: none).
    drill_buckets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DrillDownAccount:
    """One account behind a report row: its id and a masked label (no name, no number)."""

    account_id: uuid.UUID
    label: str
