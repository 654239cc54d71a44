"""The batch path fed from a portfolio SQLite file (compliance/batch_sqlite.py).

The file stores integer account keys, instants as epoch microseconds and the category
columns as one `kind` per row; the reader gives Int64 keys and Enum columns, which
`evaluate_portfolio` takes without mapping string ids. Decisions must be those of the
string-keyed columns and of the scalar engine.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from carecollect.compliance import batch
from carecollect.compliance.batch import contexts_from_columns, evaluate_portfolio
from carecollect.compliance.batch_sqlite import read_portfolio, schema_sql, write_portfolio
from carecollect.compliance.engine import evaluate
from tests.compliance.portfolio import random_portfolio
from tests.compliance.test_batch_equivalence import edge_portfolio


def _integer_keys(accounts: pl.DataFrame, events: pl.DataFrame, step: int = 3,
                  first: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same portfolio keyed by integers (first, first + step, ...)."""
    keys = {v: first + i * step for i, v in enumerate(accounts["account_id"].to_list())}
    key = pl.col("account_id").replace_strict(keys, return_dtype=pl.Int64)
    return accounts.with_columns(key), events.with_columns(key)


def _as_strings(df: pl.DataFrame) -> pl.DataFrame:
    return df.cast({c: pl.String for c, d in df.schema.items() if isinstance(d, pl.Enum)})


def _rows(out: pl.DataFrame) -> list[tuple[Any, ...]]:
    return [(r["decision"], tuple(r["reasons"]), r["modification"], r["next_allowed_at"])
            for r in out.iter_rows(named=True)]


@pytest.mark.parametrize("concurrent", [True, False])
def test_the_file_gives_back_the_columns(tmp_path: Path, concurrent: bool) -> None:
    accounts, events = _integer_keys(*random_portfolio(random.Random(41), 400))
    path = tmp_path / "portfolio.sqlite"
    write_portfolio(path, accounts, events)
    acc, ev = read_portfolio(path, concurrent=concurrent)
    assert acc.schema["account_id"] == pl.Int64
    assert ev.schema["account_id"] == pl.Int64
    assert acc.schema["time"] == pl.Datetime("us", "UTC")
    assert ev.schema["at"] == pl.Datetime("us", "UTC")
    assert acc.schema["rnd_date"] == pl.Date
    for column in ("channel", "direction", "outcome", "dialer", "cp"):
        assert isinstance(ev.schema[column], pl.Enum), column
    assert ev.schema["about_debt"] == pl.Boolean
    assert _as_strings(acc).equals(accounts)
    assert _as_strings(ev).equals(events)


def test_the_tables_are_strict_and_typed(tmp_path: Path) -> None:
    accounts, events = _integer_keys(*random_portfolio(random.Random(42), 50))
    path = tmp_path / "portfolio.sqlite"
    write_portfolio(path, accounts, events)
    with sqlite3.connect(path) as conn:
        strict = dict(conn.execute("SELECT name, strict FROM pragma_table_list "
                                   "WHERE schema = 'main'").fetchall())
        assert {strict[t] for t in ("accounts", "events", "accounts_kinds",
                                    "events_kinds")} == {1}
        assert conn.execute("SELECT DISTINCT typeof(at), typeof(kind), typeof(account_key) "
                            "FROM events").fetchall() == [("integer", "integer", "integer")]
        n_events, n_kinds = conn.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events_kinds)"
        ).fetchone()
        assert 0 < n_kinds < n_events
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO events VALUES (1, '2026-03-02T10:00:00Z', 0)")
    assert len(schema_sql()) == 4


@pytest.mark.parametrize("key_path", ["rows", "dense", "joined"])
def test_decisions_from_the_file_equal_the_scalar_engine(
    tmp_path: Path, key_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edge-case portfolio: file-fed batch == string-keyed batch == scalar, row by row,
    with integer keys that are the row numbers, mapped through the position array, or
    (sparse keys) joined."""
    accounts, events = edge_portfolio(1200, seed=20261128, prefix="Q")
    want = [(d.decision, d.reasons, d.modification, d.next_allowed_at)
            for d in map(evaluate, contexts_from_columns(accounts, events))]
    assert _rows(evaluate_portfolio(accounts, events)) == want
    path = tmp_path / "edge.sqlite"
    step, first = (1, 0) if key_path == "rows" else (3, 7)
    write_portfolio(path, *_integer_keys(accounts, events, step, first))
    if key_path == "joined":
        monkeypatch.setattr(batch, "DENSE_KEYS_SPAN", (0, 0))
    acc, ev = read_portfolio(path)
    out = evaluate_portfolio(acc, ev)
    assert out["account_id"].to_list() == acc["account_id"].to_list()
    got = _rows(out)
    mismatches = [f"{accounts['account_id'][i]}: file {g} != scalar {w}"
                  for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert mismatches == []


def test_integer_keys_ignore_other_accounts_and_fall_back_on_repeats() -> None:
    """History of accounts not in the portfolio (other keys, null keys) is ignored, and a
    repeated key takes the join, as a repeated string id does."""
    accounts, events = random_portfolio(random.Random(43), 300)
    want = _rows(evaluate_portfolio(accounts, events))
    acc, ev = _integer_keys(accounts, events)
    strangers = ev.with_columns(pl.col("account_id") + 1)  # keys between the accounts'
    nulls = ev.head(20).with_columns(pl.lit(None, pl.Int64).alias("account_id"))
    far = ev.head(20).with_columns(pl.col("account_id") + 10**15)
    mixed = pl.concat([strangers, ev, nulls, far])
    assert _rows(evaluate_portfolio(acc, mixed)) == want
    doubled = evaluate_portfolio(pl.concat([acc, acc]), ev)
    assert _rows(doubled) == want + want
    assert doubled["account_id"].to_list() == acc["account_id"].to_list() * 2
    # Keys 0..n-1 in order (the key is the row), with history of other keys.
    rows, row_events = _integer_keys(accounts, events, step=1, first=0)
    assert _rows(evaluate_portfolio(rows, row_events)) == want
    strangers = row_events.with_columns(pl.col("account_id") + rows.height)
    assert _rows(evaluate_portfolio(rows, pl.concat([strangers, row_events]))) == want
    # Sorted keys over 0..n-1 with a repeat are not the rows: [0, 0, 2, 3, ...].
    repeated = rows.with_columns(pl.when(pl.col("account_id") == 1).then(0)
                                 .otherwise(pl.col("account_id")).alias("account_id"))
    repeated_events = row_events.filter(pl.col("account_id") != 1)
    string_ids = accounts.with_columns(pl.when(pl.int_range(pl.len()) == 1)
                                       .then(pl.lit(accounts["account_id"][0]))
                                       .otherwise(pl.col("account_id")).alias("account_id"))
    string_events = events.filter(pl.col("account_id") != accounts["account_id"][1])
    assert _rows(evaluate_portfolio(repeated, repeated_events)) == _rows(
        evaluate_portfolio(string_ids, string_events))


def test_empty_history_and_a_category_that_is_always_null(tmp_path: Path) -> None:
    accounts, events = _integer_keys(*random_portfolio(random.Random(44), 60))
    accounts = accounts.with_columns(pl.lit(None, pl.String).alias("nsa_status"))
    path = tmp_path / "empty.sqlite"
    write_portfolio(path, accounts, events.clear())
    acc, ev = read_portfolio(path)
    assert ev.height == 0
    assert acc["nsa_status"].null_count() == acc.height
    assert _rows(evaluate_portfolio(acc, ev)) == _rows(evaluate_portfolio(accounts,
                                                                          events.clear()))


def test_the_writer_wants_unique_integer_keys(tmp_path: Path) -> None:
    accounts, events = random_portfolio(random.Random(45), 10)
    with pytest.raises(TypeError, match="integer key"):
        write_portfolio(tmp_path / "x.sqlite", accounts, events)
    acc, ev = _integer_keys(accounts, events)
    with pytest.raises(ValueError, match="unique"):
        write_portfolio(tmp_path / "x.sqlite", pl.concat([acc, acc]), ev)
    with pytest.raises(FileNotFoundError):
        read_portfolio(tmp_path / "missing.sqlite")
