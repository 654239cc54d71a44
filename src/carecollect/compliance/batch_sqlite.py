"""Portfolio columns of the batch path in a SQLite file: schema, writer, Arrow-native reader.

A portfolio file holds the two inputs of `batch.evaluate_portfolio` in a layout made for
fast columnar reads: no text to parse, and as few values per row as possible (SQLite's
cost, and the driver's, is per stored value).

``accounts`` (one row per account) and ``events`` (contact history):
  * ``account_key INTEGER`` — the account's integer key; ``INTEGER PRIMARY KEY`` (the
    rowid) of ``accounts``, and the account an event belongs to;
  * instants as ``INTEGER`` microseconds since 1970-01-01 UTC (``time``, ``at``, the
    consent, revocation and flag instants); ``rnd_date`` as ``INTEGER`` days since
    1970-01-01;
  * ``zip`` and ``phone_value`` (one per person in a real portfolio) as ``TEXT``;
  * ``kind INTEGER`` — the row's combination of category columns, described once in
    ``account_kinds`` / ``event_kinds`` (``kind INTEGER PRIMARY KEY``, 0..k-1, then one
    column per category: TEXT, or INTEGER 0/1 for a flag). For accounts: profile, state,
    city_is_nyc, time zones, line type, RND result, revocation channel and contact point,
    deceased, NSA status, proposed channel and dialer; for events: channel, direction,
    outcome, dialer, about_debt, contact point. A portfolio has a few hundred to a few
    thousand such combinations for millions of rows, so the six category columns of an
    event cost one integer per row.

The tables are ``STRICT`` (SQLite checks every stored type), so a reader can rely on them.

`read_portfolio` reads both tables through the ADBC SQLite driver as Arrow record batches
(no Python object per row), concurrently (one connection per table; the driver works
outside the GIL), and hands them to Polars without copying. The kinds tables become
`pl.Enum` columns (one per category, over its distinct values) gathered by ``kind``.
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

from carecollect.compliance.batch import ACCOUNT_SCHEMA, EVENT_SCHEMA, UTC_DT

# Rows per Arrow record batch the driver returns (its default, 1,024, makes thousands of
# small chunks for a million rows).
BATCH_ROWS = 262_144

# Per table: column -> storage. "key": INTEGER account key; "us": INTEGER epoch
# microseconds; "day": INTEGER epoch days; "text": TEXT; "kind": in the kinds table.
_ACCOUNT_STORAGE: dict[str, str] = {
    "account_id": "key", "profile": "kind", "state": "kind", "zip": "text",
    "city_is_nyc": "kind", "mailing_tz": "kind", "other_tz": "kind", "phone_value": "text",
    "line_type": "kind", "area_code_tz": "kind", "rnd_date": "day", "rnd_result": "kind",
    "consent_at": "us", "reconsent_at": "us", "email_consent_at": "us",
    "extra_calls_consent_at": "us", "revoke_at": "us", "revoke_channel": "kind",
    "revoke_cp": "kind", "deceased": "kind", "bankruptcy_at": "us", "cease_at": "us",
    "attorney_at": "us", "nsa_status": "kind", "channel": "kind", "dialer": "kind",
    "time": "us",
}
_EVENT_STORAGE: dict[str, str] = {
    "account_id": "key", "at": "us", "channel": "kind", "direction": "kind",
    "outcome": "kind", "dialer": "kind", "about_debt": "kind", "cp": "kind",
}
TABLES: dict[str, dict[str, str]] = {"accounts": _ACCOUNT_STORAGE, "events": _EVENT_STORAGE}
_SCHEMAS = {"accounts": ACCOUNT_SCHEMA, "events": EVENT_SCHEMA}
# Columns that may not be null.
_REQUIRED = {"accounts": {"account_id", "time", "channel"},
             "events": {"account_id", "at", "channel", "direction"}}


def _kind_columns(table: str) -> list[str]:
    return [c for c, kind in TABLES[table].items() if kind == "kind"]


def _row_columns(table: str) -> list[str]:
    """Storage column names of the rows of `table`, in order."""
    return [("account_key" if kind == "key" else c)
            for c, kind in TABLES[table].items() if kind != "kind"] + ["kind"]


def select_sql(table: str) -> str:
    """The SELECT of the stored columns of `table` (``accounts``, ``events`` or their
    ``_kinds`` tables)."""
    if table.endswith("_kinds"):
        columns = ", ".join(["kind", *_kind_columns(table.removesuffix("_kinds"))])
        return f"SELECT {columns} FROM {table} ORDER BY kind"  # noqa: S608 - fixed names
    return f"SELECT {', '.join(_row_columns(table))} FROM {table}"  # noqa: S608


def schema_sql() -> list[str]:
    """The CREATE TABLE statements of a portfolio file."""
    out = []
    for table, storage in TABLES.items():
        schema = _SCHEMAS[table]
        kinds = ["kind INTEGER PRIMARY KEY"]
        for column in _kind_columns(table):
            sql_type = "INTEGER" if schema[column] == pl.Boolean else "TEXT"
            null = " NOT NULL" if column in _REQUIRED[table] else ""
            kinds.append(f"{column} {sql_type}{null}")
        out.append(f"CREATE TABLE {table}_kinds ({', '.join(kinds)}) STRICT")
        rows = []
        for column, kind in storage.items():
            if kind == "key":
                rows.append("account_key INTEGER PRIMARY KEY" if table == "accounts"
                            else "account_key INTEGER NOT NULL")
            elif kind != "kind":
                sql_type = "TEXT" if kind == "text" else "INTEGER"
                null = " NOT NULL" if column in _REQUIRED[table] else ""
                rows.append(f"{column} {sql_type}{null}")
        rows.append(f"kind INTEGER NOT NULL REFERENCES {table}_kinds (kind)")
        out.append(f"CREATE TABLE {table} ({', '.join(rows)}) STRICT")
    return out


def _encode(df: pl.DataFrame, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of `table` in storage form, and its kinds table."""
    storage, schema = TABLES[table], _SCHEMAS[table]
    missing = [c for c in storage if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing columns {missing}")
    if not df.schema["account_id"].is_integer():
        raise TypeError(f"{table}: account_id must be an integer key, "
                        f"not {df.schema['account_id']}")
    categories = _kind_columns(table)
    values = df.select(pl.col(c).cast(pl.Int64 if schema[c] == pl.Boolean else pl.String)
                       for c in categories)
    kinds = values.unique(maintain_order=True).with_row_index("kind").with_columns(
        pl.col("kind").cast(pl.Int64))
    kind = values.join(kinds, on=categories, how="left", nulls_equal=True,
                       maintain_order="left").get_column("kind")
    rows: list[pl.Expr | pl.Series] = []
    for column, how in storage.items():
        col = pl.col(column)
        if how == "key":
            rows.append(col.cast(pl.Int64).alias("account_key"))
        elif how == "us":
            rows.append(col.cast(UTC_DT).dt.epoch("us").alias(column))
        elif how == "day":
            rows.append(col.cast(pl.Date).cast(pl.Int64).alias(column))
        elif how == "text":
            rows.append(col.cast(pl.String).alias(column))
    return df.select(*rows, kind), kinds


def write_portfolio(path: str | os.PathLike[str], accounts: pl.DataFrame,
                    events: pl.DataFrame) -> None:
    """Create (or replace) the portfolio file `path` from batch columns whose
    ``account_id`` is an integer key (unique among the accounts)."""
    encoded = {"accounts": _encode(accounts, "accounts"), "events": _encode(events, "events")}
    if encoded["accounts"][0].get_column("account_key").n_unique() != accounts.height:
        raise ValueError("accounts: account_id must be unique")
    target = Path(path)
    target.unlink(missing_ok=True)
    with adbc_sqlite.connect(str(target)) as conn:
        with contextlib.closing(conn.cursor()) as cur:
            for statement in schema_sql():
                cur.execute(statement)
            for table, (rows, kinds) in encoded.items():
                for name, frame in ((f"{table}_kinds", kinds), (table, rows)):
                    if frame.height:
                        cur.adbc_ingest(name, frame.to_arrow(), mode="append")
        conn.commit()


class PortfolioFileError(ValueError):
    """The file is not a readable portfolio file (not SQLite, or other tables)."""


def _arrow_frame(path: str, sql: str) -> pl.DataFrame:
    try:
        with adbc_sqlite.connect(path) as conn, contextlib.closing(conn.cursor()) as cur:
            cur.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
            cur.execute(sql)
            table = cur.fetch_arrow_table()
    except adbc_sqlite.Error as exc:
        raise PortfolioFileError(f"{Path(path).name}: {exc}") from exc
    frame = pl.from_arrow(table, rechunk=False)
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - a table gives a frame
        raise TypeError(type(frame))
    return frame


def decode_frame(rows: pl.DataFrame, kinds: pl.DataFrame, table: str) -> pl.DataFrame:
    """Batch columns of `table` from its stored rows and kinds, as read (by any reader):
    category columns as `pl.Enum` over their distinct values (flags as Boolean),
    ``account_id`` Int64, instants UTC datetimes, ``rnd_date`` a Date."""
    schema = _SCHEMAS[table]
    if not kinds.get_column("kind").equals(pl.Series("kind", range(kinds.height)),
                                           check_dtypes=False):
        raise PortfolioFileError(f"{table}_kinds: kinds are not 0..k-1")
    categories = []
    for column in _kind_columns(table):
        values = kinds.get_column(column)
        if schema[column] == pl.Boolean:
            categories.append(values.cast(pl.Boolean))
        else:
            names = values.drop_nulls().unique(maintain_order=True).to_list()
            categories.append(values.cast(pl.Enum(names)))
    kind = rows.get_column("kind").cast(pl.UInt32)
    high = kind.max()
    if kind.null_count() or (isinstance(high, int) and high >= kinds.height):
        raise PortfolioFileError(f"{table}: a row's kind is not in {table}_kinds")
    gathered = pl.DataFrame(categories).select(pl.all().gather(kind))
    out: list[pl.Series] = []
    for column, how in TABLES[table].items():
        if how == "kind":
            out.append(gathered.get_column(column))
            continue
        raw = rows.get_column("account_key" if how == "key" else column)
        try:
            if how == "key":
                series = raw.cast(pl.Int64)
            elif how == "us":
                series = raw.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            elif how == "day":
                series = raw.cast(pl.Int32).cast(pl.Date)
            else:
                series = raw.cast(pl.String)
        except pl.exceptions.PolarsError:
            # A table that is not STRICT can hold any type; the driver's message would
            # echo the stored values (phone numbers, ZIP codes), so name the column only.
            raise PortfolioFileError(
                f"{table}.{raw.name}: a value does not have the column's type") from None
        out.append(series.alias(column))
    return pl.DataFrame(out)


def read_portfolio(path: str | os.PathLike[str], *, concurrent: bool = True
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accounts, events) of a portfolio file, ready for `evaluate_portfolio`."""
    target = str(Path(path))
    if not Path(target).is_file():
        raise FileNotFoundError(target)
    names = [*TABLES, *(f"{t}_kinds" for t in TABLES)]
    if concurrent:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {n: pool.submit(_arrow_frame, target, select_sql(n)) for n in names}
            raw = {n: f.result() for n, f in futures.items()}
    else:
        raw = {n: _arrow_frame(target, select_sql(n)) for n in names}
    accounts, events = (decode_frame(raw[t], raw[f"{t}_kinds"], t) for t in TABLES)
    return accounts, events
