"""Differential test: the batch path and the scalar engine agree row by row."""

from __future__ import annotations

import random

import polars as pl
import pytest

from carecollect.compliance.batch import contexts_from_columns, evaluate_portfolio
from carecollect.compliance.engine import evaluate
from tests.compliance.portfolio import random_portfolio


def _compare(accounts: pl.DataFrame, events: pl.DataFrame) -> tuple[int, list[str]]:
    out = evaluate_portfolio(accounts, events)
    assert out.height == accounts.height
    mismatches = []
    blocked = 0
    for row, ctx in zip(out.iter_rows(named=True), contexts_from_columns(accounts, events),
                        strict=True):
        d = evaluate(ctx)
        got = (row["decision"], tuple(row["reasons"]), row["modification"],
               row["next_allowed_at"])
        want = (d.decision, d.reasons, d.modification, d.next_allowed_at)
        blocked += d.decision == "block"
        if got != want:
            mismatches.append(f"{row['account_id']}: batch {got} != scalar {want}")
    return blocked, mismatches


def test_batch_agrees_with_scalar_small() -> None:
    accounts, events = random_portfolio(random.Random(20260310), 1500)
    blocked, mismatches = _compare(accounts, events)
    assert mismatches == []
    assert 300 < blocked < 1400  # the generator exercises both outcomes


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_batch_agrees_with_scalar_100k(seed: int) -> None:
    """20 portfolios x 5,000 accounts = 100,000 random accounts."""
    accounts, events = random_portfolio(random.Random(seed), 5000, prefix=f"S{seed}-")
    _, mismatches = _compare(accounts, events)
    assert mismatches == []


def test_batch_keeps_input_order_and_empty_history() -> None:
    accounts, _ = random_portfolio(random.Random(7), 25)
    events = pl.DataFrame(schema=dict(random_portfolio(random.Random(7), 1)[1].schema))
    out = evaluate_portfolio(accounts, events)
    assert out.get_column("account_id").to_list() == accounts.get_column("account_id").to_list()
    _, mismatches = _compare(accounts, events)
    assert mismatches == []
