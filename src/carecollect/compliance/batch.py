"""Batch path: the time, frequency, consent, revocation and flag rules for a whole portfolio.

Input is columnar (Polars DataFrames; DuckDB/Arrow tables convert with `pl.from_arrow`):

``accounts`` — one row per account and proposed event (first-party creditor; every datetime
UTC-aware; ``as_of`` equals ``time``):
  account_id str, profile str, state str, zip str, city_is_nyc bool, mailing_tz str,
  other_tz str|null, phone_value str, line_type str|null, area_code_tz str|null,
  rnd_date date|null, rnd_result str|null, consent_at, reconsent_at, email_consent_at,
  extra_calls_consent_at, revoke_at, bankruptcy_at, cease_at, attorney_at (datetimes|null),
  revoke_channel str|null ('sms'|'call'|'email'|'all'), revoke_cp str|null ('phone'|'email'),
  deceased bool, nsa_status str|null, channel str ('call'|'sms'|'email'|'voicemail'),
  dialer str|null, time datetime.

``events`` — contact history: account_id, at, channel, direction, outcome|null, dialer|null,
about_debt bool (concerns the proposed debt), cp ('phone'|'email'|'mail').

Semantics are those of the scalar engine (content is assumed template-compliant: the planner
re-checks content per message with the scalar path at send time). `contexts_from_columns`
builds the equivalent scalar contexts; the differential test compares both paths.
`next_allowed_at` is found by the same fixpoint as the scalar engine, vectorised: every row
still blocked only by time/frequency rules moves to the latest earliest-pass instant and is
re-evaluated, until allowed.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
import polars as pl

from carecollect.compliance import zones as tz
from carecollect.compliance.businessdays import add_business_days
from carecollect.compliance.registry import ORDER

UTC_DT = pl.Datetime("us", "UTC")
DAY_US = 86_400_000_000
_NONE_US = np.iinfo(np.int64).min  # "no instant" in dense int64 microsecond arrays
# `_instant` converts every (zone, day) of the rows' range up to this many, else joins.
DENSE_INSTANTS_MAX = 5_000_000
MAX_SEARCH = dt.timedelta(days=400)
MA_CALL_OUTCOMES = ["conversation_rpc", "conversation_third_party", "voicemail_lcm",
                    "voicemail_reached_no_message"]
NYC_FROM = dt.date(2025, 4, 1)
FL_EMAIL_EXCLUDED_FROM = dt.date(2025, 5, 16)
ACCOUNT_SCHEMA: dict[str, Any] = {
    "account_id": pl.String, "profile": pl.String, "state": pl.String, "zip": pl.String,
    "city_is_nyc": pl.Boolean, "mailing_tz": pl.String, "other_tz": pl.String,
    "phone_value": pl.String, "line_type": pl.String, "area_code_tz": pl.String,
    "rnd_date": pl.Date, "rnd_result": pl.String, "consent_at": UTC_DT,
    "reconsent_at": UTC_DT, "email_consent_at": UTC_DT, "extra_calls_consent_at": UTC_DT,
    "revoke_at": UTC_DT, "revoke_channel": pl.String, "revoke_cp": pl.String,
    "deceased": pl.Boolean, "bankruptcy_at": UTC_DT, "cease_at": UTC_DT,
    "attorney_at": UTC_DT, "nsa_status": pl.String, "channel": pl.String,
    "dialer": pl.String, "time": UTC_DT,
}
EVENT_SCHEMA: dict[str, Any] = {
    "account_id": pl.String, "at": UTC_DT, "channel": pl.String, "direction": pl.String,
    "outcome": pl.String, "dialer": pl.String, "about_debt": pl.Boolean, "cp": pl.String,
}


@functools.lru_cache(maxsize=256)
def _transitions(zone: str, first_year: int = 2000, last_year: int = 2050
                 ) -> tuple[tuple[dt.datetime, int], ...]:
    """(UTC instant, UTC offset in microseconds) at every offset change of `zone` from
    `first_year`-01-01 to `last_year`-01-01 (before: the offset at the start).

    Found from `zoneinfo` itself (daily scan, then bisection to the second), so the batch
    path uses exactly the IANA rules of the scalar path, DST included. Callers scan only
    the years their instants fall in (`_years`): the scan is the costly part.
    """
    info = tz.zone(zone)

    def offset(at: dt.datetime) -> int:
        delta = at.astimezone(info).utcoffset()
        return int(delta.total_seconds() * 1_000_000) if delta is not None else 0

    day = dt.datetime(first_year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(last_year, 1, 1, tzinfo=dt.UTC)
    current = offset(day)
    out = [(dt.datetime(1900, 1, 1, tzinfo=dt.UTC), current)]
    while day < end:
        nxt = day + dt.timedelta(days=1)
        if offset(nxt) != current:
            # Bisect on whole seconds: IANA transitions fall on exact seconds.
            lo, hi = int(day.timestamp()), int(nxt.timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(dt.datetime.fromtimestamp(mid, dt.UTC)) == current:
                    lo = mid
                else:
                    hi = mid
            at = dt.datetime.fromtimestamp(hi, dt.UTC)
            current = offset(at)
            out.append((at, current))
        day = nxt
    return tuple(out)


_ZONE_BITS = 53  # key = zone number << 53 | (UTC microseconds + 2**52)
_US_BIAS = 1 << 52  # about 142 years either side of 1970


def _years(column: pl.Series) -> tuple[int, int]:
    """The scan range of `_transitions` for the instants of `column`: whole five-year
    blocks (so calls share the cache) inside 2000-2050, the range the offsets were always
    taken from (an instant outside it gets the offset at its edge, as before)."""
    low, high = column.min(), column.max()
    if not isinstance(low, dt.datetime) or not isinstance(high, dt.datetime):
        return 2000, 2050
    first = min(2045, max(2000, low.year // 5 * 5))
    last = max(first + 5, min(2050, ((high.year + 1) // 5 + 1) * 5))
    return first, last


@functools.lru_cache(maxsize=256)
def _transition_keys(zones: tuple[str, ...], first_year: int = 2000, last_year: int = 2050
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted search keys of every transition of `zones` (zone number i = position in
    `zones`) and the UTC offset in microseconds from each on."""
    keys: list[int] = []
    offsets: list[int] = []
    for i, zone in enumerate(zones):
        for at, offset in _transitions(zone, first_year, last_year):
            keys.append((i << _ZONE_BITS) + _epoch_us(at) + _US_BIAS)
            offsets.append(offset)
    return np.array(keys, dtype=np.int64), np.array(offsets, dtype=np.int64)


def _epoch_us(at: dt.datetime) -> int:
    delta = at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _localize(df: pl.DataFrame, ts: str, zone_col: str, prefix: str) -> pl.DataFrame:
    """Add `<prefix>date` / `<prefix>time` (local wall clock of `ts` in each row's zone),
    keeping the row order.

    The offset in force at an instant is that of the zone's last transition at or before
    it (`_transitions`, from zoneinfo itself): one binary search per row over the sorted
    (zone, transition) keys, instead of sorting the rows for an as-of join.
    """
    zones = tuple(sorted(df.get_column(zone_col).unique().drop_nulls().to_list()))
    if df.height == 0 or not zones:
        return df.with_columns(pl.lit(None, pl.Date).alias(prefix + "date"),
                               pl.lit(None, pl.Time).alias(prefix + "time"))
    keys, offsets = _transition_keys(zones, *_years(df.get_column(ts)))
    number = df.get_column(zone_col).replace_strict(
        {z: i for i, z in enumerate(zones)}, default=None, return_dtype=pl.Int64)
    epoch = df.get_column(ts).dt.epoch("us")
    present = (number.is_not_null() & epoch.is_not_null()).to_numpy()
    zone_no = number.fill_null(-1).to_numpy()
    epoch_us = epoch.fill_null(0).to_numpy()
    row_keys = np.where(present, (zone_no << _ZONE_BITS) + epoch_us + _US_BIAS, 0)
    index = np.searchsorted(keys, row_keys, side="right") - 1
    safe = np.clip(index, 0, len(keys) - 1)
    # Before the zone's first transition (1900) the offset is unknown: null, as before.
    known = present & (index >= 0) & ((keys[safe] >> _ZONE_BITS) == zone_no)
    # Local wall clock in microseconds; its day and time of day (floor division, as
    # Polars' date and time of a naive datetime).
    local = epoch_us + np.where(known, offsets[safe], 0)
    day = np.floor_divide(local, DAY_US)
    clock_ns = (local - day * DAY_US) * 1000
    mask = pl.Series(known)
    return df.with_columns(
        pl.when(mask).then(pl.Series(day.astype(np.int32))).otherwise(None).cast(pl.Date)
        .alias(prefix + "date"),
        pl.when(mask).then(pl.Series(clock_ns)).otherwise(None).cast(pl.Time)
        .alias(prefix + "time"))


def _instant(df: pl.DataFrame, date_expr: pl.Expr, clock: dt.time, zone_col: str,
             out: str) -> pl.DataFrame:
    """UTC instant of local `date_expr` at `clock` in each row's zone.

    Converted once per (zone, local date) over the few zones and the dates the rows span,
    and read back by position (zone number x days + day offset) instead of converting every
    row or joining on (zone, date). Rows without a zone are dropped (there are none:
    candidate zones are never null).
    """
    if df.get_column(zone_col).null_count():
        df = df.filter(pl.col(zone_col).is_not_null())
    zones = sorted(df.get_column(zone_col).unique().to_list())
    number = pl.col(zone_col).replace_strict({z: i for i, z in enumerate(zones)},
                                             return_dtype=pl.Int64)
    keys = df.select(date_expr.cast(pl.Int32).alias("_d"), number.alias("_z"))
    days = keys.get_column("_d")
    low, high = days.min(), days.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return df.with_columns(pl.lit(None, UTC_DT).alias(out))
    span = high - low + 1
    if span * len(zones) > DENSE_INSTANTS_MAX:
        return _instant_by_join(df, date_expr, clock, zone_col, out)
    offset = pl.duration(hours=clock.hour, minutes=clock.minute)
    calendar = pl.Series("_day", range(low, high + 1), dtype=pl.Int32).cast(pl.Date)
    table = np.concatenate([
        pl.select((calendar.cast(pl.Datetime("us")) + offset).dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null").dt.epoch("us")
            .fill_null(_NONE_US)).to_series().to_numpy() for zone in zones])
    position = (keys.get_column("_z") * span + (days.cast(pl.Int64) - low)).fill_null(-1)
    where = position.to_numpy()
    value = np.where(where >= 0, table[np.clip(where, 0, None)], _NONE_US)
    instant = pl.Series(out, value)
    return df.with_columns(pl.when(instant == _NONE_US).then(None).otherwise(instant)
                           .cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(out))


def _instant_by_join(df: pl.DataFrame, date_expr: pl.Expr, clock: dt.time, zone_col: str,
                     out: str) -> pl.DataFrame:
    """`_instant` through a join on the distinct (zone, local date) pairs (wide date
    ranges)."""
    offset = pl.duration(hours=clock.hour, minutes=clock.minute)
    keyed = df.filter(pl.col(zone_col).is_not_null()).with_columns(date_expr.alias("_day"))
    pairs = keyed.select(zone_col, "_day").unique().drop_nulls()
    parts = []
    for zone in pairs.get_column(zone_col).unique().to_list():
        part = pairs.filter(pl.col(zone_col) == zone)
        local = (pl.col("_day").cast(pl.Datetime("us")) + offset).dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null")
        parts.append(part.with_columns(local.dt.convert_time_zone("UTC").alias(out)))
    table = pl.concat(parts, how="vertical") if parts else pairs.with_columns(
        pl.lit(None, UTC_DT).alias(out))
    return keyed.join(table, on=[zone_col, "_day"], how="left", nulls_equal=False,
                      maintain_order="left").drop("_day")


@functools.lru_cache(maxsize=4096)
def _bd10(day: dt.date) -> dt.date:
    return add_business_days(day, 10)


def _prepare(accounts: pl.DataFrame) -> pl.DataFrame:
    zips = accounts.get_column("zip").unique().drop_nulls().to_list()
    phones = accounts.get_column("phone_value").unique().drop_nulls().to_list()
    zip_map = {z: tz.zip_zone(z) for z in zips}
    phone_map = {v: ",".join(tz.phone_zones(v)) for v in phones}
    acc = accounts.with_columns(
        pl.col("zip").replace_strict(zip_map, default=None, return_dtype=pl.String)
        .alias("zip_zone"),
        pl.when(pl.col("area_code_tz").is_not_null()).then(pl.col("area_code_tz"))
        .otherwise(pl.col("phone_value").replace_strict(phone_map, default=None,
                                                        return_dtype=pl.String))
        .alias("phone_zones"),
        pl.col("channel").is_in(["call", "sms", "voicemail"]).alias("is_phone"),
        pl.col("channel").is_in(["call", "voicemail"]).alias("is_call"),
        pl.when(pl.col("channel") == "email").then(pl.lit("email"))
        .when(pl.col("channel") == "sms").then(pl.lit("sms")).otherwise(pl.lit("call"))
        .alias("medium"),
        pl.when(pl.col("channel") == "email").then(pl.lit("email")).otherwise(pl.lit("phone"))
        .alias("proposed_cp"),
    )
    # Computed once, outside the fixpoint: the business-day bound of legal_minimum
    # revocations (TCPA-REVOKE-10BD) and the local (mailing-zone) days of the consents.
    for ts, out_col in (("revoke_at", "rv_date"), ("consent_at", "consent_day"),
                        ("reconsent_at", "reconsent_day")):
        acc = _localize(acc, ts, "mailing_tz", "_l").drop("_ltime").rename(
            {"_ldate": out_col})
    days = acc.get_column("rv_date").unique().drop_nulls().to_list()
    return acc.with_columns(pl.col("rv_date").replace_strict(
        {d: _bd10(d) for d in days}, default=None, return_dtype=pl.Date)
        .alias("revoke_binds_on")).drop("rv_date")


def _zone_table(acc: pl.DataFrame) -> pl.DataFrame:
    """(account_id, zone, slot, primary): candidate zones in scalar order (PLAT-TZ-RESOLVE).

    Resolved once per distinct (mailing zone, ZIP zone, other zone, phone, phone zones)
    combination (a portfolio has a few dozen) and joined to the accounts.
    """
    keys = ["mailing_tz", "zip_zone", "other_tz", "is_phone", "phone_zones"]
    rows = []
    for mailing, zip_zone, other, is_phone, phone in acc.select(keys).unique().iter_rows():
        candidates = [(mailing, 0), (zip_zone, 1), (other, 2)]
        if is_phone and phone is not None:
            candidates += [(z, 3) for z in phone.split(",")]
        seen: dict[str, int] = {}
        for zone, slot in candidates:
            if zone is not None and zone != "":
                seen.setdefault(zone, slot)
        rows += [(mailing, zip_zone, other, is_phone, phone, zone, slot,
                  None if mailing is None else zone == mailing)
                 for zone, slot in seen.items()]
    table = pl.DataFrame(rows, orient="row", schema={
        "mailing_tz": pl.String, "zip_zone": pl.String, "other_tz": pl.String,
        "is_phone": pl.Boolean, "phone_zones": pl.String, "zone": pl.String,
        "slot": pl.Int32, "primary": pl.Boolean})
    return acc.select("account_id", *keys).join(
        table, on=keys, how="inner", nulls_equal=True).select(
        "account_id", "zone", "slot", "primary")


def _kth(name: str, k: int) -> pl.Expr:
    """k-th most recent date among rows flagged `name` (rows are sorted oldest first)."""
    return pl.col("ev_date").filter(pl.col(name)).implode().list.get(-k, null_on_oob=True)


# Gate bits of an account's proposed action (which history rules can read its events) and
# the code of its (contact point, medium) for the reply exceptions: 1 = phone call,
# 2 = phone SMS, 3 = email (the proposed contact point follows from the channel).
_G_CALL, _G_MA, _G_NYC, _G_PRE = 1, 2, 4, 8
_REPLY_SHIFT = 4


def _event_classes() -> dict[str, pl.Expr]:
    """Per event, independent of the account: which counting vocabulary it belongs to
    (PLAT-ATTEMPT-VS-CONVERSATION), before the account's gates.

    The string columns may be String or `pl.Enum` (as `batch_sqlite.read_portfolio` gives
    them): a null is never filled with "" (an Enum without that category would stay null),
    the comparisons say what a null outcome or dialer means instead."""
    outcome = pl.col("outcome")
    connected = (outcome != "not_connected").fill_null(True)
    outbound = pl.col("direction") == "outbound"
    calls = pl.col("channel").is_in(["call", "voicemail"])
    placed = outbound & calls & connected
    ma = outbound & pl.col("about_debt") & (
        (calls & (outcome.is_null() | outcome.is_in(MA_CALL_OUTCOMES).fill_null(False)))
        | ((pl.col("channel") == "sms") & (outcome != "undeliverable").fill_null(True)))
    nyc = outbound & ((calls & connected) | pl.col("channel").is_in(["sms", "email"]))
    pre = outbound & calls & (pl.col("dialer") == "prerecorded").fill_null(False) & (
        pl.col("cp") == "phone") & connected
    conv = (pl.col("channel") == "call") & (outcome == "conversation_rpc").fill_null(False) \
        & pl.col("about_debt")
    reply = (pl.when((pl.col("cp") == "phone") & calls).then(1)
             .when((pl.col("cp") == "phone") & (pl.col("channel") == "sms")).then(2)
             .when((pl.col("cp") == "email") & (pl.col("channel") == "email")).then(3)
             .otherwise(0))
    return {"c7": placed & pl.col("about_debt"), "cconv": conv, "cma": ma, "cnyc": nyc,
            "cpre": pre, "reply_code": reply}


def _history(acc: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Events before their account's proposed time that a history rule can read, with the
    account columns those rules use.

    The account key is the row number, so account columns are gathered by position (no
    hash join of the whole history). Only two small columns are gathered for every
    event (proposed time, gate bits); an event is kept when a frequency rule of its
    account's proposed action counts it (`c7` ... `cpre`, the gates of `_decide`) or when
    it is on the proposed contact point and medium (`reply`, the reply exceptions).
    Everything else is dropped before the remaining account columns are gathered.
    """
    gates = acc.select(
        pl.col("time"),
        (pl.col("is_call").cast(pl.Int32) * _G_CALL
         + (pl.col("is_phone") & (pl.col("state") == "MA")).fill_null(False)
         .cast(pl.Int32) * _G_MA
         + pl.col("city_is_nyc").fill_null(False).cast(pl.Int32) * _G_NYC
         + (pl.col("is_call") & (pl.col("dialer").fill_null("") == "prerecorded")
            & (pl.col("line_type") == "landline")).fill_null(False).cast(pl.Int32) * _G_PRE
         + pl.when(pl.col("channel") == "email").then(3)
         .when(pl.col("channel") == "sms").then(2).otherwise(1) * (1 << _REPLY_SHIFT))
        .alias("_gates"))
    owner = events.get_column("account_id")
    gathered = gates.select(pl.all().gather(owner))
    g = pl.col("_gates")

    def gate(bit: int) -> pl.Expr:
        return (g & bit) != 0

    classes = _event_classes()
    gated = {"c7": classes["c7"] & gate(_G_CALL), "cconv": classes["cconv"] & gate(_G_CALL),
             "cma": classes["cma"] & gate(_G_MA), "cnyc": classes["cnyc"] & gate(_G_NYC),
             "cpre": classes["cpre"] & gate(_G_PRE),
             "reply": (classes["reply_code"] != 0)
             & (classes["reply_code"] == (g // (1 << _REPLY_SHIFT)))}
    # Lazy: the string comparisons the classes share are evaluated once.
    ev = events.hstack(gathered.get_columns()).lazy().select(
        "account_id", "at", "direction", "time",
        *(v.fill_null(False).alias(k) for k, v in gated.items())
    ).filter((pl.col("at") < pl.col("time")) & pl.any_horizontal(*gated)).collect()
    extra = acc.select("extra_calls_consent_at").get_column("extra_calls_consent_at")
    return ev.with_columns(extra.gather(ev.get_column("account_id")))


def _frequency(ev: pl.DataFrame, az: pl.DataFrame, accounts: int) -> pl.DataFrame:
    """Per (account, zone): the release dates of every day-window rule (PLAT-DAY-COUNT).

    Only events that can matter are expanded to the account's zones: an event counts for
    a rule only when the account's proposed action is one the rule governs (the gates
    in `_history` are those of `_decide`; elsewhere the release date is never read) and,
    for a k-th-date rule, when the account has at least k such events at all (the zone-
    dependent consent exclusion only removes events). Typically a few percent of the
    history is left for the per-zone work.
    """
    base = ("c7", "cconv", "cma", "cnyc", "cpre")
    ev = ev.filter(pl.any_horizontal(*base))
    owner = ev.get_column("account_id").to_numpy()
    enough = []
    for name, k in (("c7", 7), ("cma", 2), ("cnyc", 3), ("cpre", 3)):
        flag = ev.get_column(name).to_numpy()
        count = np.bincount(owner[flag], minlength=accounts)
        enough.append(pl.Series(name, flag & (count[owner] >= k)))
    ev = ev.with_columns(enough).filter(pl.any_horizontal(*base))
    ez = ev.join(az.select("account_id", "zone", "cx_date", "_azk"), on="account_id")
    # Oldest first: _kth reads the k-th most recent date from the end of each group.
    ez = _localize(ez, "at", "zone", "ev_").sort("at")
    excluded = pl.col("extra_calls_consent_at").is_not_null() & (
        pl.col("at") >= pl.col("extra_calls_consent_at")) & (
        pl.col("ev_date") <= pl.col("cx_date") + pl.duration(days=6))
    ez = ez.with_columns((pl.col("c7") & ~excluded.fill_null(False)).alias("c7"))
    # One integer key per (account, zone): the account-zone row of `az`.
    return ez.group_by("_azk", maintain_order=True).agg(
        pl.col("zone").first(),
        _kth("c7", 7).alias("k7"),
        pl.col("ev_date").filter(pl.col("cconv")).max().alias("conv_last"),
        _kth("cma", 2).alias("k_ma"), _kth("cnyc", 3).alias("k_nyc"),
        _kth("cpre", 3).alias("k_pre"),
    )


def _replies(ev: pl.DataFrame, rows: pl.Series) -> list[pl.Expr]:
    """Last inbound/outbound on the proposed medium and address (reply exceptions), as
    columns aligned with `rows` (the account keys, row numbers): a per-account maximum
    over a dense array instead of a group-by and a join."""
    r = ev.filter(pl.col("reply"))
    owner = r.get_column("account_id").to_numpy()
    at = r.get_column("at").dt.epoch("us").to_numpy()
    direction = r.get_column("direction")
    keys = rows.to_numpy()
    size = max(int(keys.max()) + 1 if len(keys) else 0,
               int(owner.max()) + 1 if len(owner) else 0)
    out = []
    for name, value in (("last_in", "inbound"), ("last_out", "outbound")):
        flag = (direction == value).fill_null(False).to_numpy()
        latest = np.full(size, _NONE_US, dtype=np.int64)
        np.maximum.at(latest, owner[flag], at[flag])
        column = pl.Series(name, latest).gather(rows)
        out.append(pl.when(column == _NONE_US).then(None).otherwise(column)
                   .cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(name))
    return out


H = dt.time
WINDOWS = {"w8": (H(8), H(21)), "w9": (H(9), H(21))}
# Day-window rules: (k-th date column, span in days), and whether the direct-consent
# exclusion lifts them (REGF-CALL-EXCLUSIONS).
RELEASES = {"f7": True, "fconv": True, "fma": False, "fnyc": False, "fpre": False}
_RELEASE_DAY = {"f7": ("k7", 7), "fconv": ("conv_last", 7), "fma": ("k_ma", 7),
                "fnyc": ("k_nyc", 7), "fpre": ("k_pre", 30)}


def _release_instants(azf: pl.DataFrame) -> pl.DataFrame:
    """Release day and its first instant (local midnight) per account-zone, once."""
    for name, (col, span) in _RELEASE_DAY.items():
        azf = azf.with_columns((pl.col(col) + pl.duration(days=span)).alias(f"{name}_day"))
        azf = _instant(azf, pl.col(f"{name}_day"), H(0), "zone", f"{name}_start")
    return azf


def _zone_eval(azf: pl.DataFrame, t: pl.DataFrame) -> pl.DataFrame:
    """Per account, at instant `t`: window and frequency findings aggregated over zones."""
    z = azf.join(t, on="account_id")
    z = _localize(z, "t", "zone", "l_")
    for name, (start, end) in WINDOWS.items():
        z = z.with_columns(((pl.col("l_time") < start) | (pl.col("l_time") >= end))
                           .alias(f"{name}_bad"))
        z = _instant(z, pl.when(pl.col("l_time") < start).then(pl.col("l_date"))
                     .otherwise(pl.col("l_date") + pl.duration(days=1)), start, "zone",
                     f"{name}_start")
        z = z.with_columns(pl.when(pl.col(f"{name}_bad")).then(pl.col(f"{name}_start"))
                           .otherwise(pl.col("t")).alias(f"{name}_next"))
    excluded_now = pl.col("extra_calls_consent_at").is_not_null() & (
        pl.col("t") >= pl.col("extra_calls_consent_at")) & (
        pl.col("l_date") <= pl.col("cx_date") + pl.duration(days=6))
    z = z.with_columns(excluded_now.fill_null(False).alias("excl"))
    releases = {name: (pl.col(f"{name}_day"), exempt) for name, exempt in RELEASES.items()}
    for name, (release, consent_exempt) in releases.items():
        viol = release.is_not_null() & (pl.col("l_date") < release)
        if consent_exempt:
            viol = viol & ~pl.col("excl")
        z = z.with_columns(viol.fill_null(False).alias(f"{name}_bad"))
        z = z.with_columns(pl.when(pl.col(f"{name}_bad")).then(pl.col(f"{name}_start"))
                           .otherwise(None).alias(f"{name}_at"))
    # Aggregates over an account's zones, and what each is for an account with one zone
    # (most accounts): the row itself, with `any` ignoring nulls as the aggregate does.
    aggs = [(pl.len().alias("n_zones"), pl.lit(1, pl.UInt32).alias("n_zones"))]
    for name in WINDOWS:
        bad, bad_np = pl.col(f"{name}_bad"), pl.col(f"{name}_bad") & ~pl.col("primary")
        aggs += [(bad.any().alias(f"{name}_bad"), bad.fill_null(False).alias(f"{name}_bad")),
                 (bad_np.any().alias(f"{name}_bad_np"),
                  bad_np.fill_null(False).alias(f"{name}_bad_np")),
                 (pl.col(f"{name}_next").max().alias(f"{name}_next"),
                  pl.col(f"{name}_next"))]
    for name in releases:
        bad = pl.col(f"{name}_bad")
        aggs += [(bad.any().alias(f"{name}_bad"), bad.fill_null(False).alias(f"{name}_bad")),
                 (pl.col(f"{name}_at").max().alias(f"{name}_at"), pl.col(f"{name}_at"))]
    aggs.append((pl.col("l_date").filter(pl.col("primary")).first().alias("today"),
                 pl.when(pl.col("primary")).then(pl.col("l_date")).alias("today")))
    single = pl.col("_nz") == 1
    one = z.filter(single).select("account_id", *(row for _, row in aggs))
    many = z.filter(~single).group_by("account_id").agg(*(agg for agg, _ in aggs))
    return pl.concat([one, many], how="vertical")


def _decide(state: pl.DataFrame, times: pl.DataFrame, azf: pl.DataFrame
            ) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Decision of every account in `times` (account_id, t) at its instant `t` (mirror of
    engine._decide); `state` holds every account's columns. Returns the flags `blocked`,
    `untimed` (a block without an earliest instant), `earliest`, `m_rnd` and the reasons
    as a bitmask over the returned rule ids (see `_expand`)."""
    zones = _zone_eval(azf, times)
    # Lazy from here to the decision columns: only the columns the rules read are carried
    # through the joins, and repeated sub-expressions are computed once.
    s = state.lazy().join(times.lazy(), on="account_id", how="inner").join(
        zones.lazy(), on="account_id", how="left")
    c = pl.col
    t = c("t")
    on = t.dt.date()  # as_of is UTC in the batch domain
    strict = c("profile") == "strict"
    ca = c("state") == "CA"
    star_ca = strict | ca
    timed = pl.lit(True)
    automated = (c("channel") == "sms") | (c("is_call") & (
        c("dialer").is_null() | c("dialer").is_in(["autodialer", "prerecorded"])))
    wireless = c("line_type").is_null() | (c("line_type") == "wireless") | (
        (c("line_type") == "voip") & strict)
    grant = pl.max_horizontal(pl.when(c("consent_at") <= t).then(c("consent_at")),
                              pl.when(c("reconsent_at") <= t).then(c("reconsent_at")))
    revoke_media_phone = c("revoke_channel").is_in(["sms", "call", "all"])
    binds = strict | (c("today") >= c("revoke_binds_on"))
    revoke_eff = (c("revoke_cp") == "phone") & revoke_media_phone & (c("revoke_at") <= t) \
        & binds
    revoke_eff = revoke_eff.fill_null(False)
    live = grant.is_not_null() & ~(revoke_eff & (c("revoke_at") >= grant)).fill_null(False)
    reply_24h = c("last_in").is_not_null() & (t - c("last_in") <= pl.duration(hours=24)) & (
        c("last_out").is_null() | (c("last_out") <= c("last_in")))
    reply_24h = reply_24h.fill_null(False)
    medium_in_revoke = (c("revoke_channel") == "all") | (c("revoke_channel") == c("medium"))
    optout = (c("revoke_cp") == c("proposed_cp")) & medium_in_revoke & (c("revoke_at") <= t)
    lift = pl.when(c("medium") == "email").then(
        pl.when(c("email_consent_at") <= t).then(c("email_consent_at"))).otherwise(grant)
    optout = optout & ~(lift.is_not_null() & (lift > c("revoke_at")))
    optout_reply = c("last_in").is_not_null() & (c("last_in") > c("revoke_at")) & (
        c("last_out").is_null() | (c("last_out") <= c("last_in")))
    optout = (optout & ~optout_reply.fill_null(False)).fill_null(False)
    consent_day_ok = (c("rnd_date") >= c("grant_day")).fill_null(False)
    fresh = (c("rnd_date") >= c("today") - pl.duration(days=30)).fill_null(False)
    rnd_scope = (c("is_phone") & automated & wireless & c("live")).fill_null(False)
    rnd_yes = (rnd_scope & (c("rnd_result") == "yes").fill_null(False) & consent_day_ok)
    rnd_checked = (rnd_scope & ~rnd_yes & strict
                   & (t - c("grant") > pl.duration(days=30))).fill_null(False)
    no_data = (c("rnd_result") == "no_data").fill_null(False)
    grant_day = pl.when(grant == c("reconsent_at")).then(c("reconsent_day")) \
        .otherwise(c("consent_day"))
    s = s.with_columns(grant.alias("grant"), live.alias("live"), revoke_eff.alias("rv"))
    s = s.with_columns(grant_day.alias("grant_day"))
    nyc_on = c("city_is_nyc") & (on >= NYC_FROM)
    fl_channel = (c("channel") != "email") | (on < FL_EMAIL_EXCLUDED_FROM)
    nsa_bad = c("nsa_status").fill_null("") == "prohibited_balance_bill"
    medium_differs = ~((c("revoke_channel") == "all") | (c("revoke_channel") == c("medium")))
    # name -> (violated, timed earliest column or None, cites)
    blocks: list[tuple[str, pl.Expr, str | None, list[tuple[str, pl.Expr]]]] = [
        ("REGF-TIME-8TO9", star_ca & timed & c("w8_bad") & ~reply_24h, "w8_next",
         [("PLAT-TIME-BOUNDARY", pl.lit(True)), ("PLAT-TZ-RESOLVE", pl.lit(True)),
          ("REGF-TIME-MULTITZ", strict & c("w8_bad_np")), ("STATE-CA-ROSENTHAL", ca)]),
        ("REGF-TIME-MULTITZ", strict & (c("n_zones") >= 2) & c("w8_bad_np") & ~reply_24h,
         "w8_next", [("PLAT-TZ-RESOLVE", pl.lit(True))]),
        ("STATE-FL-FCCPA-HOURS", (c("state") == "FL") & fl_channel & c("w8_bad"), "w8_next",
         [("PLAT-TIME-BOUNDARY", pl.lit(True)), ("PLAT-TZ-RESOLVE", pl.lit(True))]),
        ("STATE-OK-ADAD", (c("state") == "OK") & c("is_call")
         & (c("dialer").fill_null("") == "prerecorded") & c("w9_bad"), "w9_next",
         [("PLAT-TIME-BOUNDARY", pl.lit(True))]),
        ("REGF-CALL-7IN7", strict & c("is_call") & c("f7_bad"), "f7_at",
         [("PLAT-DAY-COUNT", pl.lit(True)), ("PLAT-ATTEMPT-VS-CONVERSATION", pl.lit(True))]),
        ("REGF-CALL-7AFTERCONV", strict & c("is_call") & c("fconv_bad"), "fconv_at",
         [("PLAT-DAY-COUNT", pl.lit(True))]),
        ("STATE-TX-FDCA", (c("state") == "TX") & c("is_call") & c("f7_bad"), "f7_at",
         [("PLAT-DAY-COUNT", pl.lit(True)), ("PLAT-ATTEMPT-VS-CONVERSATION", pl.lit(True))]),
        ("STATE-MA-2IN7", (c("state") == "MA") & c("is_phone") & c("fma_bad"), "fma_at",
         [("PLAT-DAY-COUNT", pl.lit(True)), ("PLAT-ATTEMPT-VS-CONVERSATION", pl.lit(True))]),
        ("STATE-NYC-3IN7", nyc_on & c("fnyc_bad"), "fnyc_at",
         [("PLAT-DAY-COUNT", pl.lit(True))]),
        ("TCPA-PRERECORDED-RESIDENTIAL", c("is_call")
         & (c("dialer").fill_null("") == "prerecorded") & (c("line_type") == "landline")
         & ~c("live") & c("fpre_bad"), "fpre_at", [("PLAT-DAY-COUNT", pl.lit(True))]),
        ("TCPA-CONSENT-WIRELESS", c("is_phone") & automated & wireless & ~c("live"), None,
         [("TCPA-REVOKE-ANYMEANS", c("rv")), ("TCPA-REVOKE-10BD", c("rv")),
          ("TCPA-RECONSENT", c("rv")), ("PLAT-HONOR-IMMEDIATELY", c("rv") & strict),
          ("TCPA-REVOKE-ALL", c("rv") & strict & medium_differs),
          ("TCPA-HC-EXEMPT-NA", ~c("rv"))]),
        ("TCPA-RND", rnd_yes | (rnd_checked & ~fresh)
         | (rnd_checked & fresh & no_data & ~c("is_call")), None,
         [("PLAT-RND-CADENCE", rnd_checked)]),
        ("STATE-NYC-ECONSENT", nyc_on & (
            ((c("channel") == "email") & ~(c("email_consent_at") <= t).fill_null(False))
            | ((c("channel") == "sms") & ~c("live"))), None, []),
        ("REGF-MEDIUM-OPTOUT", strict & optout, None,
         [("PLAT-HONOR-IMMEDIATELY", strict)]),
        ("REGF-ATTY", star_ca & (c("attorney_at") <= t).fill_null(False), None,
         [("STATE-CA-ROSENTHAL", ca)]),
        ("REGF-CEASE", star_ca & (c("cease_at") <= t).fill_null(False), None,
         [("STATE-CA-ROSENTHAL", ca)]),
        ("PLAT-BANKRUPTCY", (c("bankruptcy_at") <= t).fill_null(False), None, []),
        ("HIPAA-PERSONAL-REP", c("deceased"), None, [("PLAT-DECEASED", strict)]),
        ("PLAT-DECEASED", strict & c("deceased"), None, [("HIPAA-PERSONAL-REP", pl.lit(True))]),
        ("MED-NSA-BALANCE", nsa_bad, None, []),
        ("REGF-UNAUTH-AMOUNT", strict & nsa_bad, None, [("MED-NSA-BALANCE", pl.lit(True))]),
        ("MED-NSA-PPDR", c("nsa_status").fill_null("") == "ppdr_pending", None, []),
    ]
    cols: list[pl.Expr] = []
    cite: dict[str, pl.Expr] = {}
    timed_at: list[pl.Expr] = []
    untimed: list[pl.Expr] = []
    for name, cond, at_col, cites in blocks:
        flag = cond.fill_null(False)
        cols.append(flag.alias("b_" + name))
        cite[name] = cite.get(name, pl.lit(False)) | pl.col("b_" + name)
        for extra, when in cites:
            cite[extra] = cite.get(extra, pl.lit(False)) | (pl.col("b_" + name)
                                                            & when.fill_null(False))
        if at_col is None:
            untimed.append(pl.col("b_" + name))
        else:
            timed_at.append(pl.when(pl.col("b_" + name)).then(pl.col(at_col)))
    modify = rnd_checked & fresh & no_data & c("is_call")
    s = s.with_columns(*cols, modify.fill_null(False).alias("m_rnd"))
    blocked = pl.any_horizontal(*[pl.col("b_" + n) for n, *_ in blocks])
    ordered = sorted(cite, key=lambda r: ORDER[r])
    # Reasons travel as a bitmask (one bit per rule id, catalog order) and are expanded
    # through a dictionary of the few distinct masks: far cheaper than list columns.
    mask = pl.sum_horizontal([pl.when(cite[r]).then(pl.lit(1 << i, pl.Int64))
                              .otherwise(pl.lit(0, pl.Int64)) for i, r in enumerate(ordered)])
    out = s.select(
        "account_id",
        blocked.alias("blocked"),
        pl.any_horizontal(*untimed).alias("untimed"),
        pl.max_horizontal(*timed_at).alias("earliest"),
        pl.col("m_rnd"),
        pl.when(blocked).then(mask).otherwise(pl.lit(0, pl.Int64)).alias("_mask"),
    ).collect()
    return out, tuple(ordered)


def _expand(out: pl.DataFrame, ordered: tuple[str, ...]) -> pl.DataFrame:
    """Decision, reasons and modification columns from `_decide`'s flags and reason mask,
    built once for the final rows (the fixpoint's steps only need the flags)."""
    masks = out.get_column("_mask").unique().to_list()
    table = pl.DataFrame({"_mask": masks, "_reasons": [
        [r for i, r in enumerate(ordered) if m >> i & 1] for m in masks]},
        schema={"_mask": pl.Int64, "_reasons": pl.List(pl.String)})
    mod_reasons = pl.lit(sorted(["TCPA-RND", "PLAT-RND-CADENCE"], key=lambda r: ORDER[r]),
                         dtype=pl.List(pl.String))
    blocked, modified = pl.col("blocked"), ~pl.col("blocked") & pl.col("m_rnd")
    return out.join(table, on="_mask", how="left", maintain_order="left").with_columns(
        pl.when(blocked).then(pl.lit("block")).when(pl.col("m_rnd"))
        .then(pl.lit("allow_with_modification")).otherwise(pl.lit("allow")).alias("decision"),
        pl.when(modified).then(mod_reasons).otherwise(pl.col("_reasons")).alias("reasons"),
        pl.when(modified).then(pl.lit("manual_live_call_only")).otherwise(None)
        .alias("modification"))


_SEEDS = (0x5EED_0001, 0x5EED_0002)
# From this many history events on, the events are mapped to accounts by hashed ids.
HASHED_IDS_FROM_EVENTS = 50_000


# Integer account keys are mapped through a position array when their range is at most
# this many times the number of accounts (plus the constant), else joined.
DENSE_KEYS_SPAN = (4, 1_000_000)
_INT_KEY_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def _events_by_dense_key(ids: pl.Series, events: pl.DataFrame, row_type: Any
                         ) -> pl.DataFrame | None:
    """`_events_by_row` for unique integer account keys in a range not much wider than
    the accounts: the row of each key is read from an array indexed by key (no join of the
    history). None when the keys repeat, are null or are too sparse (the caller joins)."""
    n = ids.len()
    low, high = ids.min(), ids.max()
    if n == 0 or ids.null_count() or not isinstance(low, int) or not isinstance(high, int):
        return None
    span = high - low + 1
    factor, extra = DENSE_KEYS_SPAN
    if span > factor * n + extra:
        return None
    column = events.get_column("account_id").cast(pl.Int64)
    first, last = column.min(), column.max()
    within = column.null_count() == 0 and (
        not isinstance(first, int) or not isinstance(last, int) or low <= first <= last <= high)
    if within and low == 0 and high == n - 1 and bool(
            (np.diff(ids.cast(pl.Int64).to_numpy()) > 0).all()):
        # Keys 0..n-1 in order (as a portfolio file numbers them): the key is the row.
        return events.with_columns(column.cast(row_type).alias("account_id"))
    position = np.full(span, -1, dtype=np.int64)
    position[ids.cast(pl.Int64).to_numpy() - low] = np.arange(n, dtype=np.int64)
    if np.count_nonzero(position >= 0) != n:  # a repeated key
        return None
    if within:
        row = position[column.to_numpy() - low]
        keep = row >= 0
        if keep.all():
            return events.with_columns(pl.Series("account_id", row).cast(row_type))
        return events.filter(pl.Series(keep)).with_columns(
            pl.Series("account_id", row[keep]).cast(row_type))
    key = column.fill_null(low).to_numpy()
    inside = column.is_not_null().to_numpy() & (key >= low) & (key <= high)
    row = np.where(inside, position[np.where(inside, key - low, 0)], -1)
    keep = row >= 0
    if not keep.all():
        events, row = events.filter(pl.Series(keep)), row[keep]
    return events.with_columns(pl.Series("account_id", row).cast(row_type))


def _events_by_row(ids: pl.Series, events: pl.DataFrame) -> pl.DataFrame:
    """The events with `account_id` replaced by their account's row number; events of
    accounts not in `ids` are dropped.

    Joining millions of string ids is the costly part of this step, so the join is on a
    64-bit hash of the id and a match is confirmed by a second, independently seeded
    64-bit hash (two ids agreeing on both by chance: about 2**-128 per event). Used only
    when the accounts' ids are unique and their first hashes are too; otherwise (or for
    small inputs) the plain string join.
    """
    keys = ids.to_frame("account_id").with_row_index("_k")
    if ids.dtype.is_integer():
        dense = _events_by_dense_key(ids, events, keys.schema["_k"])
        return dense if dense is not None else events.join(
            keys, on="account_id", how="inner").drop("account_id").rename({"_k": "account_id"})
    if events.height < HASHED_IDS_FROM_EVENTS:
        return events.join(keys, on="account_id", how="inner").drop("account_id") \
            .rename({"_k": "account_id"})
    h1, h2 = (ids.hash(seed=seed) for seed in _SEEDS)
    # Distinct first hashes imply distinct ids; a repeated id (or a hash collision among
    # the accounts) takes the string join.
    if h1.n_unique() != h1.len():
        return events.join(keys, on="account_id", how="inner").drop("account_id") \
            .rename({"_k": "account_id"})
    table = pl.DataFrame({"_h": h1}).with_row_index("_k")
    ev_ids = events.get_column("account_id")
    row = pl.DataFrame({"_h": ev_ids.hash(seed=_SEEDS[0])}).join(
        table, on="_h", how="left", maintain_order="left").get_column("_k")
    confirmed = (ev_ids.hash(seed=_SEEDS[1]) == h2.gather(row)).fill_null(False)
    out = events.with_columns(row.alias("account_id"))
    return out if confirmed.all() else out.filter(confirmed)


def _input_schemas(accounts: pl.DataFrame, events: pl.DataFrame
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column types the batch path works on: `ACCOUNT_SCHEMA` / `EVENT_SCHEMA`, except
    that integer account keys on both sides stay integers (mapped to rows without a string
    join) and `pl.Enum` history columns stay Enums (compared without strings)."""
    account_schema, event_schema = dict(ACCOUNT_SCHEMA), dict(EVENT_SCHEMA)
    keys = (accounts.schema.get("account_id"), events.schema.get("account_id"))
    if all(k in _INT_KEY_TYPES for k in keys):
        account_schema["account_id"] = event_schema["account_id"] = pl.Int64
    for column, dtype in events.schema.items():
        if isinstance(dtype, pl.Enum) and event_schema.get(column) == pl.String:
            event_schema[column] = dtype
    return account_schema, event_schema


def evaluate_portfolio(accounts: pl.DataFrame, events: pl.DataFrame,
                       max_iterations: int = 64) -> pl.DataFrame:
    """Decide every account's proposed event. Returns account_id, decision, reasons,
    modification, next_allowed_at (UTC), in the order of `accounts`."""
    account_schema, event_schema = _input_schemas(accounts, events)
    accounts = accounts.cast(account_schema, strict=False)  # type: ignore[arg-type]
    events = events.cast(event_schema, strict=False)  # type: ignore[arg-type]
    # Internally the account key is the row number (integer joins are much cheaper).
    ids = accounts.get_column("account_id")
    events = _events_by_row(ids, events)
    accounts = accounts.with_row_index("_k").drop("account_id").rename({"_k": "account_id"})
    acc = _prepare(accounts)
    az = _zone_table(acc).join(acc.select("account_id", "extra_calls_consent_at"),
                               on="account_id")
    az = _localize(az, "extra_calls_consent_at", "zone", "cx_").drop("cx_time") \
        .with_row_index("_azk").with_columns(pl.len().over("account_id").alias("_nz"))
    history = _history(acc, events)
    freq = _frequency(history, az, acc.height)
    # Release instants only where a release date exists (a few percent of account-zones).
    azf = az.join(_release_instants(freq).drop("zone"), on="_azk", how="left")
    state = acc.with_columns(_replies(history, acc.get_column("account_id")))
    first, ordered = _decide(state, acc.select("account_id", pl.col("time").alias("t")), azf)
    pending = first.filter(pl.col("blocked") & ~pl.col("untimed")
                           & pl.col("earliest").is_not_null()).select(
        "account_id", pl.col("earliest").alias("t"))
    found: list[pl.DataFrame] = []
    starts = acc.select("account_id", pl.col("time").alias("start"))
    for _ in range(max_iterations):
        if pending.height == 0:
            break
        pending = pending.join(starts, on="account_id").filter(
            pl.col("t") - pl.col("start") <= MAX_SEARCH).drop("start")
        if pending.height == 0:
            break
        step = _decide(state, pending, azf)[0].join(pending, on="account_id")
        found.append(step.filter(~pl.col("blocked")).select(
            "account_id", pl.col("t").alias("next_allowed_at")))
        pending = step.filter(pl.col("blocked") & ~pl.col("untimed")
                              & pl.col("earliest").is_not_null()
                              & (pl.col("earliest") > pl.col("t"))).select(
            "account_id", pl.col("earliest").alias("t"))
    # With nothing re-timed the empty frame must carry the internal key's type (the row
    # index), or the join below fails on mismatched key types.
    key_type = first.schema["account_id"]
    nxt = pl.concat(found) if found else pl.DataFrame(
        schema={"account_id": key_type, "next_allowed_at": UTC_DT})
    out = _expand(first.join(nxt, on="account_id", how="left").sort("account_id"), ordered)
    return out.with_columns(ids.alias("account_id")).select(
        "account_id", "decision", "reasons", "modification", "next_allowed_at")


def contexts_from_columns(accounts: pl.DataFrame, events: pl.DataFrame) -> list[Any]:
    """The scalar contexts equivalent to batch rows (for the differential test and tools)."""
    from carecollect.compliance.scenario import (
        AttorneyFlag as Atty,
    )
    from carecollect.compliance.scenario import (
        BankruptcyFlag as Bk,
    )
    from carecollect.compliance.scenario import (
        CeaseFlag as Cease,
    )
    from carecollect.compliance.scenario import (
        Consent,
        ConsentKind,
        ContactPoint,
        Content,
        Context,
        Creditor,
        Debt,
        Debtor,
        Flags,
        HistoryEvent,
        ProposedAction,
        Revocation,
        RndCheck,
    )
    from carecollect.compliance.scenario import (
        Nsa as NsaStatus,
    )

    by_account: dict[str, list[HistoryEvent]] = {}
    for e in events.iter_rows(named=True):
        by_account.setdefault(e["account_id"], []).append(HistoryEvent(
            at=e["at"], channel=e["channel"], direction=e["direction"],
            contact_point={"phone": "cp_phone", "email": "cp_email"}.get(e["cp"], "cp_mail"),
            person="debtor", debt_ids=("D1",) if e["about_debt"] else ("D2",),
            dialer=e["dialer"], outcome=e["outcome"], text=None))
    out = []
    for a in accounts.iter_rows(named=True):
        rnd = None if a["rnd_date"] is None else RndCheck(date=a["rnd_date"],
                                                          result=a["rnd_result"])
        cps = (
            ContactPoint(id="cp_phone", type="phone", value=a["phone_value"],
                         line_type=a["line_type"], area_code_tz=a["area_code_tz"],
                         rnd_check=rnd),
            ContactPoint(id="cp_email", type="email", value="person@example.org"),
            ContactPoint(id="cp_mail", type="postal", value="1 Test Way"),
        )
        consents = []
        grants: tuple[tuple[str, ConsentKind, str | None], ...] = (
                              ("consent_at", "tcpa_pec", "cp_phone"),
                              ("reconsent_at", "tcpa_pec", "cp_phone"),
                              ("email_consent_at", "email_use", "cp_email"),
                              ("extra_calls_consent_at", "direct_prior_consent_extra_calls",
                               None))
        for key, kind, cp in grants:
            if a[key] is not None:
                consents.append(Consent(contact_point=cp, kind=kind, granted_at=a[key]))
        revocations: tuple[Revocation, ...] = ()
        if a["revoke_at"] is not None:
            revocations = (Revocation(
                contact_point="cp_phone" if a["revoke_cp"] == "phone" else "cp_email",
                channel=a["revoke_channel"], received_at=a["revoke_at"]),)
        flags = Flags(
            bankruptcy=None if a["bankruptcy_at"] is None else Bk(
                filed_at=a["bankruptcy_at"], chapter=7, status="filed"),
            cease_requested=None if a["cease_at"] is None else Cease(
                received_at=a["cease_at"], in_writing=True, scope="all"),
            attorney_represented=None if a["attorney_at"] is None else Atty(
                since=a["attorney_at"], attorney_name_known=True))
        channel = a["channel"]
        tags: tuple[Any, ...] = ("lcm_required_only", "practice_name_neutral") \
            if channel == "voicemail" else ("practice_name_neutral",)
        action = ProposedAction(
            channel=channel, time=a["time"], recipient="debtor",
            contact_point="cp_email" if channel == "email" else "cp_phone",
            dialer=a["dialer"], debt_ids=("D1",),
            content=Content(template="reminder", contains=tags, includes_opt_out=True))
        out.append(Context(
            as_of=a["time"], policy_profile=a["profile"],
            creditor=Creditor(type="first_party", entity_kind="dental_practice",
                              display_name="Maple Street Dental"),
            debtor=Debtor(person_id=a["account_id"], state=a["state"], zip=a["zip"],
                          mailing_tz=a["mailing_tz"], city_is_nyc=a["city_is_nyc"],
                          other_known_tz=(a["other_tz"],) if a["other_tz"] else (),
                          deceased=a["deceased"]),
            debt=Debt(debt_ids=("D1",), kind="dental", balance_cents=84_500,
                      nsa=None if a["nsa_status"] is None else NsaStatus(
                          status=a["nsa_status"])),
            proposed_action=action, contact_points=cps, consents=tuple(consents),
            revocations=revocations,
            contact_history=tuple(sorted(by_account.get(a["account_id"], []),
                                         key=lambda e: e.at)),
            flags=flags))
    return out
