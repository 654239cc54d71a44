"""Portfolio columns of the batch path in a SQLite file: schema, writer, Arrow-native reader.

A portfolio file holds the two inputs of `batch.evaluate_portfolio` in a layout made for
fast columnar reads (no text parsing, few bytes per row):

``accounts`` / ``events``
  * ``account_key INTEGER`` — the account's integer key (``INTEGER PRIMARY KEY`` of
    ``accounts``, i.e. the rowid; ``events.account_key`` refers to it);
  * instants as ``INTEGER`` microseconds since 1970-01-01 UTC; ``rnd_date`` as ``INTEGER``
    days since 1970-01-01; booleans as ``INTEGER`` 0/1;
  * category columns (profile, state, time zones, line type, channels, dialer, outcome,
    direction, contact point, ...) as small ``INTEGER`` codes into ``portfolio_codes``
    (column_name, code, value), codes 0..k-1 per column in the order the writer met the
    values;
  * ``zip`` and ``phone_value`` (one per person in real portfolios) as ``TEXT``.

The tables are ``STRICT`` (SQLite checks every stored type), so a reader can rely on them.

`read_portfolio` reads both tables through the ADBC SQLite driver as Arrow record batches
(no Python object per row), concurrently (one connection per table, the driver runs
without the GIL), and hands them to Polars without copying; category codes become
`pl.Enum` columns by one gather over the column's small dictionary.
`evaluate_portfolio` takes the result as it is: integer keys are mapped to account rows
through a dense array, and Enum history columns are compared without strings.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import adbc_driver_sqlite.dbapi as adbc_sqlite
import polars as pl

from carecollect.compliance.batch import UTC_DT

# Rows per Arrow record batch the driver returns (its default, 1,024, makes thousands of
# small chunks for a million rows).
BATCH_ROWS = 262_144

# Per table: column -> storage kind. "key": INTEGER account key; "us": INTEGER epoch
# microseconds; "day": INTEGER epoch days; "bool": INTEGER 0/1; "code": INTEGER code into
# portfolio_codes; "text": TEXT.
_ACCOUNT_STORAGE: dict[str, str] = {
    "account_id": "key", "profile": "code", "state": "code", "zip": "text",
    "city_is_nyc": "bool", "mailing_tz": "code", "other_tz": "code", "phone_value": "text",
    "line_type": "code", "area_code_tz": "code", "rnd_date": "day", "rnd_result": "code",
    "consent_at": "us", "reconsent_at": "us", "email_consent_at": "us",
    "extra_calls_consent_at": "us", "revoke_at": "us", "revoke_channel": "code",
    "revoke_cp": "code", "deceased": "bool", "bankruptcy_at": "us", "cease_at": "us",
    "attorney_at": "us", "nsa_status": "code", "channel": "code", "dialer": "code",
    "time": "us",
}
_EVENT_STORAGE: dict[str, str] = {
    "account_id": "key", "at": "us", "channel": "code", "direction": "code",
    "outcome": "code", "dialer": "code", "about_debt": "bool", "cp": "code",
}
# Columns that may not be null.
_REQUIRED = {"accounts": {"account_id", "time", "channel"},
             "events": {"account_id", "at", "channel", "direction"}}
TABLES: dict[str, dict[str, str]] = {"accounts": _ACCOUNT_STORAGE, "events": _EVENT_STORAGE}


def sql_name(column: str) -> str:
    return "account_key" if column == "account_id" else column


def select_sql(table: str) -> str:
    """The SELECT of every column of `table` (``accounts`` or ``events``), in storage form."""
    columns = ", ".join(sql_name(c) for c in TABLES[table])
    return f"SELECT {columns} FROM {table}"  # noqa: S608 - names from TABLES only


def schema_sql() -> list[str]:
    """The CREATE TABLE statements of a portfolio file."""
    out = ["CREATE TABLE portfolio_codes (table_name TEXT NOT NULL, column_name TEXT NOT NULL,"
           " code INTEGER NOT NULL, value TEXT NOT NULL,"
           " PRIMARY KEY (table_name, column_name, code)) STRICT"]
    for table, storage in TABLES.items():
        cols = []
        for column, kind in storage.items():
            sql_type = "TEXT" if kind == "text" else "INTEGER"
            if column == "account_id" and table == "accounts":
                cols.append("account_key INTEGER PRIMARY KEY")
                continue
            null = " NOT NULL" if column in _REQUIRED[table] else ""
            cols.append(f"{sql_name(column)} {sql_type}{null}")
        out.append(f"CREATE TABLE {table} ({', '.join(cols)}) STRICT")
    return out


def _encode(df: pl.DataFrame, table: str) -> tuple[pl.DataFrame, list[tuple[str, str, int,
                                                                                str]]]:
    """The frame in storage types, and its dictionary rows."""
    storage = TABLES[table]
    missing = [c for c in storage if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing columns {missing}")
    if not df.schema["account_id"].is_integer():
        raise TypeError(f"{table}: account_id must be an integer key, "
                        f"not {df.schema['account_id']}")
    codes: list[tuple[str, str, int, str]] = []
    exprs: list[pl.Expr] = []
    for column, kind in storage.items():
        col = pl.col(column)
        if kind == "key":
            exprs.append(col.cast(pl.Int64).alias(sql_name(column)))
        elif kind == "us":
            exprs.append(col.cast(UTC_DT).dt.epoch("us").alias(column))
        elif kind == "day":
            exprs.append(col.cast(pl.Date).cast(pl.Int64).alias(column))
        elif kind == "bool":
            exprs.append(col.cast(pl.Boolean).cast(pl.Int64).alias(column))
        elif kind == "text":
            exprs.append(col.cast(pl.String).alias(column))
        else:
            values = df.get_column(column).cast(pl.String).drop_nulls().unique(
                maintain_order=True).to_list()
            codes += [(table, column, i, v) for i, v in enumerate(values)]
            exprs.append(col.cast(pl.String).replace_strict(
                {v: i for i, v in enumerate(values)}, default=None, return_dtype=pl.Int64)
                .alias(column))
    return df.select(exprs), codes


def write_portfolio(path: str | os.PathLike[str], accounts: pl.DataFrame,
                    events: pl.DataFrame) -> None:
    """Create (or replace) the portfolio file `path` from batch columns whose
    ``account_id`` is an integer key (one row per account)."""
    acc, acc_codes = _encode(accounts, "accounts")
    ev, ev_codes = _encode(events, "events")
    if acc.get_column("account_key").n_unique() != acc.height:
        raise ValueError("accounts: account_id must be unique")
    target = Path(path)
    target.unlink(missing_ok=True)
    with adbc_sqlite.connect(str(target)) as conn:
        with contextlib.closing(conn.cursor()) as cur:
            for statement in schema_sql():
                cur.execute(statement)
            if acc_codes or ev_codes:
                cur.executemany("INSERT INTO portfolio_codes VALUES (?, ?, ?, ?)",
                                acc_codes + ev_codes)
            for name, df in (("accounts", acc), ("events", ev)):
                if df.height:
                    cur.adbc_ingest(name, df.to_arrow(), mode="append")
        conn.commit()


def _arrow_frame(path: str, sql: str) -> pl.DataFrame:
    with adbc_sqlite.connect(path) as conn, contextlib.closing(conn.cursor()) as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a table gives a frame
    return frame


def decode_frame(df: pl.DataFrame, table: str, codes: dict[str, list[str]]) -> pl.DataFrame:
    """Batch columns from the storage columns of `table` as read (any reader), given the
    values of each coded column in code order."""
    out: list[pl.Series] = []
    for column, kind in TABLES[table].items():
        raw = df.get_column(sql_name(column))
        if kind == "key":
            series = raw.cast(pl.Int64)
        elif kind == "us":
            series = raw.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        elif kind == "day":
            series = raw.cast(pl.Int32).cast(pl.Date)
        elif kind == "bool":
            series = raw.cast(pl.Boolean)
        elif kind == "text":
            series = raw.cast(pl.String)
        else:
            values = codes.get(column, [])
            dictionary = pl.Series(values, dtype=pl.Enum(values))
            series = dictionary.gather(raw.cast(pl.UInt32)) if values else \
                pl.Series(column, [None] * raw.len(), dtype=pl.Enum([]))
        out.append(series.alias(column))
    return pl.DataFrame(out)


def read_portfolio(path: str | os.PathLike[str], *, concurrent: bool = True
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accounts, events) of a portfolio file, ready for `evaluate_portfolio`:
    ``account_id`` Int64, instants UTC datetimes, category columns `pl.Enum`."""
    target = str(Path(path))
    if not Path(target).is_file():
        raise FileNotFoundError(target)
    selects = {table: select_sql(table) for table in TABLES}
    codes_sql = ("SELECT table_name, column_name, code, value FROM portfolio_codes "
                 "ORDER BY table_name, column_name, code")
    if concurrent:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {t: pool.submit(_arrow_frame, target, sql) for t, sql in selects.items()}
            code_rows = _arrow_frame(target, codes_sql)
            raw = {t: f.result() for t, f in futures.items()}
    else:
        raw = {t: _arrow_frame(target, sql) for t, sql in selects.items()}
        code_rows = _arrow_frame(target, codes_sql)
    dictionaries: dict[str, dict[str, list[str]]] = {t: {} for t in TABLES}
    for table_name, column, code, value in code_rows.iter_rows():
        values = dictionaries[table_name].setdefault(column, [])
        if code != len(values):
            raise ValueError(f"portfolio_codes: {table_name}.{column} codes are not 0..k-1")
        values.append(value)
    return (decode_frame(raw["accounts"], "accounts", dictionaries["accounts"]),
            decode_frame(raw["events"], "events", dictionaries["events"]))

