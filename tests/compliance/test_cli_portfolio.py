"""`carecollect compliance portfolio FILE`: the batch path over a portfolio SQLite file."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from carecollect.cli.compliance import app
from carecollect.compliance.batch import evaluate_portfolio
from carecollect.compliance.batch_sqlite import schema_sql, write_portfolio
from tests.compliance.portfolio import random_portfolio


def _file(tmp_path: Path) -> tuple[Path, pl.DataFrame]:
    accounts, events = random_portfolio(random.Random(46), 120)
    keys = {v: 100 + i for i, v in enumerate(accounts["account_id"].to_list())}
    key = pl.col("account_id").replace_strict(keys, return_dtype=pl.Int64)
    path = tmp_path / "portfolio.sqlite"
    write_portfolio(path, accounts.with_columns(key), events.with_columns(key))
    return path, evaluate_portfolio(accounts, events)


def test_decisions_as_json_lines_and_parquet(tmp_path: Path) -> None:
    path, want = _file(tmp_path)
    result = CliRunner().invoke(app, ["portfolio", str(path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["account_key"] for x in lines] == list(range(100, 220))
    assert [x["decision"] for x in lines] == want["decision"].to_list()
    assert [x["reasons"] for x in lines] == want["reasons"].to_list()
    assert [x["next_allowed_at"] for x in lines] == [
        None if t is None else t.isoformat() for t in want["next_allowed_at"].to_list()]
    out = tmp_path / "decisions.parquet"
    result = CliRunner().invoke(app, ["portfolio", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["decision"].to_list() == want["decision"].to_list()


def test_a_file_that_is_not_a_portfolio_exits_2(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    other.write_bytes(b"not a database at all" * 100)
    result = CliRunner().invoke(app, ["portfolio", str(other)])
    assert result.exit_code == 2
    assert "cannot read portfolio file" in result.stderr
    result = CliRunner().invoke(app, ["portfolio", str(tmp_path / "missing.sqlite")])
    assert result.exit_code == 2


def test_a_value_of_the_wrong_type_exits_2_naming_the_column_not_the_value(
    tmp_path: Path,
) -> None:
    # The writer makes STRICT tables; a file made elsewhere without STRICT can hold text in
    # an integer column. The error names the column and never echoes stored values.
    path = tmp_path / "loose.sqlite"
    with sqlite3.connect(path) as conn:
        for statement in schema_sql():
            conn.execute(statement.replace(" STRICT", ""))
        conn.execute("INSERT INTO accounts_kinds (kind, channel) VALUES (0, 'sms')")
        conn.execute("INSERT INTO accounts (account_key, phone_value, time, kind) "
                     "VALUES (1, '+16175550123', 'next tuesday', 0)")
    conn.close()
    before = path.read_bytes()
    result = CliRunner().invoke(app, ["portfolio", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: cannot read portfolio file: PortfolioFileError: "
                                     "accounts.time: a value does not have the column's type")
    assert "next tuesday" not in result.output
    assert "6175550123" not in result.output
    assert path.read_bytes() == before  # read only
