"""Edge cases of the batch path that the random differential test rarely produces."""

from __future__ import annotations

import random

import polars as pl

from carecollect.compliance.batch import evaluate_portfolio
from tests.compliance.portfolio import random_portfolio


def test_a_batch_with_nothing_re_timed_still_decides() -> None:
    """When no row is blocked only by time or frequency, there is nothing to re-time; the
    empty next-allowed frame must still join (it once failed on its key type)."""
    accounts, events = random_portfolio(random.Random(7), 40)
    retimed = evaluate_portfolio(accounts, events).filter(
        pl.col("next_allowed_at").is_not_null()
    )
    keep = accounts.filter(~pl.col("account_id").is_in(retimed["account_id"].to_list()))
    out = evaluate_portfolio(keep, events.filter(pl.col("account_id").is_in(
        keep["account_id"].to_list())))
    assert out.height == keep.height
    assert out["account_id"].to_list() == keep["account_id"].to_list()
    assert out["next_allowed_at"].null_count() == out.height
