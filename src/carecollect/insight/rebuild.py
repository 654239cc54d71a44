"""The set-based full rebuild of the rollup: every cell of every account in a few SQL
statements (DuckDB), instead of one Python call of ``contributions.contribute`` per
account.

The organization's ledger lines, enrollments and account locations created before the
watermark are copied out once (``COPY ... TO STDOUT`` on PostgreSQL, one cursor on
SQLite) into CSV files in a private temporary directory, read by an in-process DuckDB
database, and aggregated there with the same definitions as ``contributions.py``:

* local days through DuckDB's ICU time zones (``AT TIME ZONE``, DST-safe);
* per account and local day: the net amount, the charges and the patient cash, with
  running sums (``SUM() OVER``), so "balance at the end of day D" or "before day D" is one
  ``ASOF JOIN``;
* FIFO aging: the open balance sits in the newest charges; for each charge the sum of the
  newer charges is a window sum, so the share of each charge is ``least(amount, balance -
  newer charges before the cutoff)`` without any per-account loop;
* placement, holdout lift and the agency day as joins of enrollments / candidate days with
  the lines or the running sums.

The cells are exactly those of the per-account path (tests/insight/test_rebuild.py checks
it on a fixture portfolio, both backends); the incremental refresh and the live
correction still use ``contribute``.

No PHI leaves the database: only ids, kinds, amounts and timestamps are copied, to files
readable by this process only, deleted at the end.
"""

# The statements below are assembled from constants, an integer threshold, a checked IANA
# zone name and metric names checked against METRICS: no caller text reaches them.
# ruff: noqa: S608

from __future__ import annotations

import csv
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from carecollect.insight.contributions import (
    LIFT_WINDOW_DAYS,
    METRICS,
    PLACEMENT_WINDOWS,
    Parameters,
)

LocatedKey = tuple[str, date, uuid.UUID | None, str]
_DAY_US = 86_400_000_000
_CASH = "('patient_payment', 'refund')"
# DuckDB: two threads on the shared machine, spill to the temporary directory past 2 GB.
_MEMORY_LIMIT = "2GB"


def _label(age: str) -> str:
    return (
        f"CASE WHEN {age} <= 30 THEN '0-30' WHEN {age} <= 60 THEN '31-60' "
        f"WHEN {age} <= 90 THEN '61-90' WHEN {age} <= 120 THEN '91-120' ELSE '120+' END"
    )


def _sqlite_ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_EXTRACTS = {
    # name: (columns, SQL with :org and :watermark)
    "lines": "SELECT account_id, kind, amount_cents, {posted} FROM ledger_entry "
    "WHERE organization_id = {org} AND created_at < {watermark}",
    "enrollments": "SELECT account_id, campaign_id, cohort, {enrolled} FROM campaign_enrollment "
    "WHERE organization_id = {org} AND created_at < {watermark}",
    "accounts": "SELECT id, location_id FROM account WHERE organization_id = {org}",
}


def _extract(
    session: Session, organization_id: uuid.UUID, watermark: datetime, folder: Path
) -> None:
    """Write lines.csv, enrollments.csv and accounts.csv (no header, empty = null)."""
    raw: Any = session.connection().connection.dbapi_connection
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        values = {"org": "?", "watermark": "?", "posted": "posted_at", "enrolled": "enrolled_at"}
        for name, template in _EXTRACTS.items():
            sql = template.format(**values)
            params: tuple[str, ...] = (organization_id.hex,)
            if "{watermark}" in template:
                params += (_sqlite_ts(watermark),)
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                with (folder / f"{name}.csv").open("w", newline="") as handle:
                    csv.writer(handle).writerows(cursor)
            finally:
                cursor.close()
        return
    from psycopg import sql as pgsql

    values = {
        "org": pgsql.Literal(str(organization_id)).as_string(raw),
        "watermark": pgsql.Literal(watermark.astimezone(UTC)).as_string(raw),
        "posted": "posted_at AT TIME ZONE 'UTC'",
        "enrolled": "enrolled_at AT TIME ZONE 'UTC'",
    }
    with raw.cursor() as cursor:
        for name, template in _EXTRACTS.items():
            statement = f"COPY ({template.format(**values)}) TO STDOUT WITH (FORMAT csv)"
            with (folder / f"{name}.csv").open("wb") as handle, cursor.copy(statement) as copy:
                for block in copy:
                    handle.write(block)


def _csv(name: str, **columns: str) -> str:
    """read_csv of one extracted file: no header, comma separated, empty field = null."""
    spec = ", ".join(f"'{column}': '{kind}'" for column, kind in columns.items())
    return (
        f"read_csv('{{folder}}/{name}.csv', header = false, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {{{{{spec}}}}})"
    )


def _statements(params: Parameters) -> list[str]:
    zone = str(params.zone)
    if "'" in zone:  # zone names are IANA keys; refuse anything else before quoting
        raise ValueError("unexpected time zone name")
    threshold = params.agency_threshold_days

    def local(column: str) -> str:
        return f"CAST((CAST({column} AS TIMESTAMPTZ) AT TIME ZONE '{zone}') AS DATE)"

    placement_windows = ", ".join(
        f"coalesce(sum(CASE WHEN l.kind IN {_CASH} AND l.us > f.us AND l.us <= f.us + "
        f"{w * _DAY_US} THEN -l.amt END), 0) AS c{w}"
        for w in PLACEMENT_WINDOWS
    )
    placement_cells = " UNION ALL ".join(
        f"SELECT 'placement', day, a, 'collected_{w}', greatest(0, least(c{w}, bal)), "
        f"CASE WHEN least(c{w}, bal) > 0 THEN 1 ELSE 0 END FROM pl WHERE bal > 0"
        for w in PLACEMENT_WINDOWS
    )
    statements = [
        "SET TimeZone = 'UTC'",
        # -- the copied rows ------------------------------------------------------------
        # Accounts get a small integer key (`k`); every later join is on it.
        "CREATE TABLE acc AS SELECT CAST(row_number() OVER () AS INTEGER) AS k, a, loc FROM "
        + _csv("accounts", a="VARCHAR", loc="VARCHAR"),
        f"CREATE TABLE l AS SELECT acc.k AS a, r.kind, r.amt, epoch_us(r.posted) AS us, "
        f"{local('r.posted')} AS day FROM "
        f"{_csv('lines', a='VARCHAR', kind='VARCHAR', amt='BIGINT', posted='TIMESTAMP')} r "
        "JOIN acc ON acc.a = r.a",
        f"CREATE TABLE e AS SELECT row_number() OVER () AS id, acc.k AS a, r.camp, r.cohort, "
        f"epoch_us(r.enrolled) AS us, {local('r.enrolled')} AS day FROM "
        + _csv("enrollments", a="VARCHAR", camp="VARCHAR", cohort="VARCHAR", enrolled="TIMESTAMP")
        + " r JOIN acc ON acc.a = r.a",
        # -- per account and local day, with running sums -------------------------------------
        "CREATE TABLE run AS SELECT a, day, sum(amt) OVER w AS bal, sum(ch) OVER w AS chs, "
        "sum(chn) OVER w AS chn, sum(cash) OVER w AS cash FROM (SELECT a, day, "
        "sum(amt) AS amt, sum(CASE WHEN kind = 'charge' THEN amt ELSE 0 END) AS ch, "
        "sum(CASE WHEN kind = 'charge' THEN 1 ELSE 0 END) AS chn, "
        f"sum(CASE WHEN kind IN {_CASH} THEN -amt ELSE 0 END) AS cash "
        "FROM l GROUP BY a, day) WINDOW w AS (PARTITION BY a ORDER BY day "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
        "CREATE TABLE tot AS SELECT a, sum(CASE WHEN kind = 'charge' THEN amt ELSE 0 END) "
        "AS chs, min(CASE WHEN kind = 'charge' THEN day END) AS first_charge, "
        f"sum(CASE WHEN kind IN {_CASH} THEN -amt ELSE 0 END) AS cash FROM l GROUP BY a",
        # Charges newest first; `newer` = the sum of the charges after this one.
        "CREATE TABLE ch AS SELECT a, day, amt, coalesce(sum(amt) OVER (PARTITION BY a "
        "ORDER BY us DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer "
        "FROM l WHERE kind = 'charge'",
        "CREATE TABLE cells (metric VARCHAR, period DATE, loc VARCHAR, bucket VARCHAR, "
        "amount BIGINT, n BIGINT)",
        # -- ledger_day ---------------------------------------------------------------------
        "INSERT INTO cells SELECT 'ledger_day', day, a, kind, amt, 1 FROM l",
        # -- aging (FIFO) ---------------------------------------------------------------------
        "CREATE TABLE ab AS SELECT p.a, p.as_of, p.last_day, r.bal, r.chs, r.chn, t.chs AS "
        "ctotal, t.first_charge FROM (SELECT x.a, d.as_of, d.last_day FROM (SELECT DISTINCT a "
        "FROM l) x CROSS JOIN asof_days d) p ASOF JOIN run r ON p.a = r.a AND p.as_of > r.day "
        "JOIN tot t ON t.a = p.a WHERE r.bal > 0",
        # Charges before the cutoff that the open balance reaches (newest first): the
        # charges after one of them and before the cutoff are `newer - (ctotal - chs)`.
        "CREATE TABLE taken AS SELECT ab.a, ab.as_of, ab.last_day, c.day, least(c.amt, "
        "ab.bal - (c.newer - (ab.ctotal - ab.chs))) AS taken FROM ab JOIN ch c ON c.a = ab.a "
        "AND c.day < ab.as_of WHERE ab.bal - (c.newer - (ab.ctotal - ab.chs)) > 0",
        "INSERT INTO cells SELECT 'aging', as_of, a, "
        f"{_label('(last_day - day)')}, taken, 0 FROM taken",
        "INSERT INTO cells SELECT 'aging', as_of, a, CASE WHEN chn > 0 THEN "
        f"{_label('(last_day - first_charge)')} ELSE '0-30' END, bal - chs, 0 FROM ab "
        "WHERE bal - chs > 0",
        "INSERT INTO cells SELECT 'aging', ab.as_of, ab.a, CASE WHEN ab.bal - ab.chs > 0 THEN "
        f"(CASE WHEN ab.chn > 0 THEN {_label('(ab.last_day - ab.first_charge)')} "
        f"ELSE '0-30' END) ELSE {_label('(ab.last_day - o.oldest)')} END, 0, 1 FROM ab "
        "LEFT JOIN (SELECT a, as_of, min(day) AS oldest FROM taken GROUP BY a, as_of) o "
        "ON o.a = ab.a AND o.as_of = ab.as_of",
        # -- placement: the first enrollment --------------------------------------------------
        "CREATE TABLE pl AS SELECT f.a, any_value(f.day) AS day, "
        "coalesce(sum(CASE WHEN l.us <= f.us THEN l.amt END), 0) AS bal, "
        f"{placement_windows} FROM (SELECT a, arg_min(us, us) AS us, arg_min(day, us) AS day "
        "FROM e GROUP BY a) f LEFT JOIN l ON l.a = f.a GROUP BY f.a, f.us",
        "INSERT INTO cells SELECT 'placement', day, a, 'placed', bal, 1 FROM pl WHERE bal > 0",
        f"INSERT INTO cells {placement_cells}",
        # -- holdout lift: every enrollment --------------------------------------------------
        "CREATE TABLE lf AS SELECT e.id, any_value(e.a) AS a, any_value(e.day) AS day, "
        "any_value(e.camp) || '|' || any_value(e.cohort) AS bucket, "
        "coalesce(sum(CASE WHEN l.us <= e.us THEN l.amt END), 0) AS bal, "
        f"coalesce(sum(CASE WHEN l.kind IN {_CASH} AND l.us > e.us AND l.us <= e.us + "
        f"{LIFT_WINDOW_DAYS * _DAY_US} THEN -l.amt END), 0) AS collected "
        "FROM e LEFT JOIN l ON l.a = e.a GROUP BY e.id",
        "INSERT INTO cells SELECT 'lift_enrolled', day, a, bucket, greatest(bal, 0), 1 FROM lf",
        "INSERT INTO cells SELECT 'lift_recovered', day, a, bucket, collected, 1 FROM lf "
        "WHERE collected > 0",
        # -- agency: the first candidate day whose balance exceeds the recent charges --------
        f"CREATE TABLE cand AS SELECT DISTINCT a, day + {threshold + 1} AS e FROM l "
        "WHERE kind = 'charge' UNION SELECT l.a, l.day FROM l JOIN (SELECT a, min(day) + "
        f"{threshold + 1} AS first FROM l WHERE kind = 'charge' GROUP BY a) f ON f.a = l.a "
        "WHERE l.kind <> 'charge' AND l.amt > 0 AND l.day > f.first",
        "CREATE TABLE ag AS SELECT a, arg_min(e, e) AS e, arg_min(bal, e) AS bal, "
        "arg_min(cash, e) AS cash FROM (SELECT c.a, c.e, r.bal, r.cash, r.chs - "
        f"coalesce(old.chs, 0) AS recent FROM cand c ASOF JOIN run r ON c.a = r.a AND "
        f"c.e >= r.day ASOF LEFT JOIN run old ON c.a = old.a AND c.e - {threshold + 1} "
        ">= old.day) WHERE bal - recent > 0 GROUP BY a",
        "INSERT INTO cells SELECT 'agency', ag.e, ag.a, 'eligible', ag.bal, 1 FROM ag",
        "INSERT INTO cells SELECT 'agency', ag.e, ag.a, 'recovered', greatest(0, "
        "least(t.cash - ag.cash, ag.bal)), CASE WHEN least(t.cash - ag.cash, ag.bal) > 0 "
        "THEN 1 ELSE 0 END FROM ag JOIN tot t ON t.a = ag.a",
    ]
    # Each insert is summed per location at once (the cells table never holds a row per
    # account): (metric, period, account, bucket, amount, count) -> per location.
    insert = "INSERT INTO cells "
    return [
        insert
        + "SELECT x.m, x.p, acc.loc, x.b, sum(x.amount), sum(x.n) FROM ("
        + statement.removeprefix(insert)
        + ") AS x(m, p, a, b, amount, n) "
        "JOIN acc ON acc.k = x.a GROUP BY ALL"
        if statement.startswith(insert)
        else statement
        for statement in statements
    ]


_RESULT = (
    "SELECT c.metric, c.period, c.loc, c.bucket, sum(c.amount)::BIGINT, sum(c.n)::BIGINT "
    "FROM cells c WHERE c.metric IN ({metrics}) "
    "GROUP BY ALL HAVING sum(c.amount) <> 0 OR sum(c.n) <> 0"
)


def rebuild_cells(
    session: Session,
    *,
    organization_id: uuid.UUID,
    watermark: datetime,
    params: Parameters,
) -> tuple[dict[LocatedKey, list[int]], int]:
    """Every non-zero cell (metric, period, location, bucket) -> [amount_cents, count] of
    the accounts as seen at `watermark`, and the number of accounts with a line or an
    enrollment."""
    import duckdb

    metrics = sorted(params.metrics or METRICS)
    if not set(metrics) <= METRICS:
        raise ValueError("unknown metric")
    with tempfile.TemporaryDirectory(prefix="cc-rollup-") as name:
        folder = Path(name)
        _extract(session, organization_id, watermark, folder)
        con = duckdb.connect(
            config={
                "threads": 2,
                "memory_limit": _MEMORY_LIMIT,
                "temp_directory": str(folder / "spill"),
            }
        )
        try:
            con.execute("CREATE TABLE asof_days (as_of DATE, last_day DATE)")
            if params.aging_days:
                con.executemany(
                    "INSERT INTO asof_days VALUES (?, ?)",
                    [(d, d - timedelta(days=1)) for d in params.aging_days],
                )
            for statement in _statements(params):
                con.execute(statement.format(folder=folder))
            accounts = con.execute(
                "SELECT count(*) FROM (SELECT a FROM l UNION SELECT a FROM e)"
            ).fetchone()
            rows = con.execute(
                _RESULT.format(metrics=", ".join(f"'{m}'" for m in metrics))
            ).fetchall()
        finally:
            con.close()
    locations: dict[str | None, uuid.UUID | None] = {None: None}
    campaigns: dict[str, str] = {}
    cells: dict[LocatedKey, list[int]] = {}
    for metric, period, location, bucket, amount, count in rows:
        if location not in locations:
            locations[location] = uuid.UUID(location)
        if metric.startswith("lift_"):
            campaign, _, cohort = bucket.partition("|")
            if campaign not in campaigns:
                campaigns[campaign] = str(uuid.UUID(campaign))
            bucket = f"{campaigns[campaign]}|{cohort}"
        key = (metric, period, locations[location], bucket)
        cell = cells.setdefault(key, [0, 0])
        cell[0] += int(amount)
        cell[1] += int(count)
    return cells, int(accounts[0]) if accounts else 0
