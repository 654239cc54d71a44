"""Equivalence of the batch path and the scalar engine on a portfolio built from edge cases.

Every account sits on a border the catalog calls out: proposed times one second either
side of 08:00, 09:00 and 21:00 local in several zones (DST days and federal holidays
included), an area code or a stated zone other than the mailing zone, the 7th vs the 8th
placed call, MA 2-in-7, NYC 3-in-7, day 7 vs day 8 after a conversation, prerecorded
calls to landlines, and legal_minimum revocations whose 10 business days straddle federal
holidays. Both ways of mapping the history to accounts (string join for small inputs,
hashed ids for large ones) must give the same decisions as the scalar engine: decision,
reasons (rule ids), modification and next_allowed_at.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from carecollect.compliance import batch
from carecollect.compliance.batch import (
    ACCOUNT_SCHEMA,
    EVENT_SCHEMA,
    contexts_from_columns,
    evaluate_portfolio,
)
from carecollect.compliance.engine import evaluate

UTC = dt.UTC
PLACES = [  # state, zip, mailing zone, NYC, phone (area code in the same zone)
    ("NY", "10001", "America/New_York", True, "+12125550101"),
    ("NY", "12207", "America/New_York", False, "+15185550101"),
    ("MA", "02108", "America/New_York", False, "+16175550101"),
    ("FL", "33101", "America/New_York", False, "+13055550101"),
    ("TX", "75201", "America/Chicago", False, "+12145550101"),
    ("OK", "74103", "America/Chicago", False, "+19185550101"),
    ("CA", "94103", "America/Los_Angeles", False, "+14155550101"),
    ("AZ", "85004", "America/Phoenix", False, "+16025550101"),
    ("CO", "80202", "America/Denver", False, "+13035550101"),
    ("PA", "15213", "America/New_York", False, "+14125550101"),
]
OTHER_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "America/Anchorage",
]
# DST start and end, federal holidays (Thanksgiving, Christmas, Independence Day observed on
# Friday 3 July 2026, MLK day, New Year's Day 2027) and an ordinary Tuesday.
DAYS = [
    dt.date(2026, 3, 8),
    dt.date(2026, 11, 1),
    dt.date(2026, 11, 26),
    dt.date(2026, 12, 25),
    dt.date(2026, 7, 3),
    dt.date(2026, 1, 19),
    dt.date(2027, 1, 1),
    dt.date(2026, 6, 16),
]
CLOCKS = [
    dt.time(7, 59, 59),
    dt.time(8, 0, 0),
    dt.time(8, 59, 59),
    dt.time(9, 0, 0),
    dt.time(20, 59, 59),
    dt.time(21, 0, 0),
    dt.time(12, 30),
    dt.time(0, 0, 0),
    dt.time(23, 59, 59),
]
CALL_OUTCOMES = [
    "not_connected",
    "no_answer",
    "voicemail_reached_no_message",
    "voicemail_lcm",
    "conversation_rpc",
    "conversation_third_party",
    None,
]


def _local(day: dt.date, clock: dt.time, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _account(
    rng: random.Random, i: int, prefix: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state, zip_code, zone, nyc, phone = rng.choice(PLACES)
    t = _local(rng.choice(DAYS), rng.choice(CLOCKS), zone)
    channel = rng.choice(["call", "call", "sms", "email", "voicemail"])
    dialer = (
        None
        if channel in ("sms", "email")
        else rng.choice(["manual", "autodialer", "prerecorded", "prerecorded", None])
    )
    profile = rng.choice(["strict", "legal_minimum"])
    account_id = f"{prefix}{i:06d}"

    def days_before(days: int, clock: dt.time | None = None) -> dt.datetime:
        # On a local day border of the mailing zone or at a random minute of that day.
        day = t.astimezone(ZoneInfo(zone)).date() - dt.timedelta(days=days)
        if clock is None:
            clock = rng.choice(
                [
                    dt.time(0, 0, 0),
                    dt.time(23, 59, 59),
                    dt.time(rng.randrange(24), rng.randrange(60)),
                ]
            )
        return _local(day, clock, rng.choice([zone, *OTHER_ZONES]))

    # Revocations 8-16 days back: the 10 business days of TCPA-REVOKE-10BD straddle the
    # holidays above for legal_minimum accounts.
    revoke_at = days_before(rng.randrange(0, 17)) if rng.random() < 0.3 else None
    revoke_cp = None if revoke_at is None else rng.choice(["phone", "phone", "email"])
    revoke_channel = (
        None
        if revoke_cp is None
        else (rng.choice(["sms", "call", "all"]) if revoke_cp == "phone" else "email")
    )
    consent_at = days_before(rng.randrange(1, 90)) if rng.random() < 0.75 else None
    account = {
        "account_id": account_id,
        "profile": profile,
        "state": state,
        "zip": zip_code,
        "city_is_nyc": nyc,
        "mailing_tz": zone,
        "other_tz": rng.choice(OTHER_ZONES) if rng.random() < 0.2 else None,
        "phone_value": phone,
        "line_type": rng.choice(["wireless", "wireless", "landline", "landline", "voip", None]),
        "area_code_tz": rng.choice(OTHER_ZONES) if rng.random() < 0.35 else None,
        "rnd_date": (t - dt.timedelta(days=rng.randrange(0, 45))).date()
        if rng.random() < 0.7
        else None,
        "rnd_result": rng.choice(["no", "no", "yes", "no_data"]),
        "consent_at": consent_at,
        "reconsent_at": days_before(rng.randrange(0, 5)) if rng.random() < 0.1 else None,
        "email_consent_at": days_before(rng.randrange(1, 60)) if rng.random() < 0.6 else None,
        "extra_calls_consent_at": days_before(rng.randrange(0, 9)) if rng.random() < 0.1 else None,
        "revoke_at": revoke_at,
        "revoke_channel": revoke_channel,
        "revoke_cp": revoke_cp,
        "deceased": rng.random() < 0.01,
        "bankruptcy_at": days_before(3) if rng.random() < 0.01 else None,
        "cease_at": days_before(3) if rng.random() < 0.01 else None,
        "attorney_at": days_before(3) if rng.random() < 0.01 else None,
        "nsa_status": rng.choice(["ppdr_pending", "prohibited_balance_bill"])
        if rng.random() < 0.02
        else None,
        "channel": channel,
        "dialer": dialer,
        "time": t,
    }
    events: list[dict[str, Any]] = []

    def event(
        at: dt.datetime,
        ch: str,
        *,
        outcome: str | None,
        ev_dialer: str | None,
        direction: str = "outbound",
        about: bool = True,
    ) -> None:
        # History is the past of the proposed action (as_of = time in the batch domain):
        # an event on the proposed day but after its time is moved one second before it.
        at = min(at, t - dt.timedelta(seconds=1))
        cp = {"email": "email", "letter": "mail"}.get(ch, "phone")
        events.append(
            {
                "account_id": account_id,
                "at": at,
                "channel": ch,
                "direction": direction,
                "outcome": outcome,
                "dialer": ev_dialer,
                "about_debt": about,
                "cp": cp,
            }
        )

    # Caps: 6, 7 or 8 placed calls in the last 7 days (7-in-7), spread over the day
    # borders D-7 / D-6.
    for _ in range(rng.choice([0, 0, 1, 2, 6, 7, 8])):
        event(
            days_before(rng.randrange(0, 8)),
            rng.choice(["call", "voicemail"]),
            outcome=rng.choice(CALL_OUTCOMES),
            ev_dialer=rng.choice(["manual", "prerecorded", "autodialer"]),
            about=rng.random() < 0.9,
        )
    # A conversation 6, 7 or 8 days back (REGF-CALL-7AFTERCONV).
    if rng.random() < 0.3:
        event(
            days_before(rng.choice([6, 7, 8])),
            "call",
            outcome="conversation_rpc",
            ev_dialer="manual",
            direction=rng.choice(["outbound", "inbound"]),
        )
    # MA 2-in-7 and NYC 3-in-7: texts and emails on the window's borders.
    for _ in range(rng.choice([0, 1, 2, 3])):
        ch = rng.choice(["sms", "email"])
        event(
            days_before(rng.randrange(0, 8)),
            ch,
            outcome=rng.choice(["delivered", "undeliverable", None]),
            ev_dialer=None,
        )
    # Prerecorded calls to the number within 30 days (TCPA-PRERECORDED-RESIDENTIAL).
    for _ in range(rng.choice([0, 2, 3])):
        event(
            days_before(rng.randrange(0, 31)), "call", outcome="no_answer", ev_dialer="prerecorded"
        )
    # Consumer-initiated contact for the reply exceptions, some within 24 hours.
    if rng.random() < 0.2:
        event(
            t - dt.timedelta(hours=rng.choice([1, 23, 25])),
            rng.choice(["sms", "call", "email"]),
            outcome=None,
            ev_dialer=None,
            direction="inbound",
        )
    # Letters never count but must not disturb anything.
    if rng.random() < 0.2:
        event(days_before(2), "letter", outcome="delivered", ev_dialer=None)
    return account, events


def edge_portfolio(n: int, seed: int, prefix: str = "E") -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = random.Random(seed)
    accounts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in range(n):
        account, history = _account(rng, i, prefix)
        accounts.append(account)
        events.extend(history)
    return (
        pl.DataFrame(accounts, schema=ACCOUNT_SCHEMA),
        pl.DataFrame(events, schema=EVENT_SCHEMA),
    )


def _scalar(accounts: pl.DataFrame, events: pl.DataFrame) -> list[tuple[Any, ...]]:
    out = []
    for ctx in contexts_from_columns(accounts, events):
        d = evaluate(ctx)
        out.append((d.decision, d.reasons, d.modification, d.next_allowed_at))
    return out


def _batch(accounts: pl.DataFrame, events: pl.DataFrame) -> list[tuple[Any, ...]]:
    out = evaluate_portfolio(accounts, events)
    assert out.get_column("account_id").to_list() == accounts.get_column("account_id").to_list()
    return [
        (r["decision"], tuple(r["reasons"]), r["modification"], r["next_allowed_at"])
        for r in out.iter_rows(named=True)
    ]


@pytest.fixture(scope="module")
def portfolio() -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[Any, ...]]]:
    accounts, events = edge_portfolio(3000, seed=20261127)
    return accounts, events, _scalar(accounts, events)


@pytest.mark.parametrize(
    ("key_path", "instants"),
    [("string_join", "dense"), ("hashed_ids", "dense"), ("hashed_ids", "joined")],
)
def test_batch_equals_scalar_on_edge_cases(
    portfolio: tuple[pl.DataFrame, pl.DataFrame, list[tuple[Any, ...]]],
    key_path: str,
    instants: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts, events, want = portfolio
    # The hashed-id mapping is used from this many history events on; force either path.
    monkeypatch.setattr(batch, "HASHED_IDS_FROM_EVENTS", 10**12 if key_path == "string_join" else 0)
    # Local day -> instant conversions: dense table, or the join kept for wide date ranges.
    monkeypatch.setattr(batch, "DENSE_INSTANTS_MAX", 10**12 if instants == "dense" else -1)
    got = _batch(accounts, events)
    mismatches = [
        f"{accounts['account_id'][i]}: batch {g} != scalar {w}"
        for i, (g, w) in enumerate(zip(got, want, strict=True))
        if g != w
    ]
    assert mismatches == []


def test_the_edge_portfolio_reaches_every_border(
    portfolio: tuple[pl.DataFrame, pl.DataFrame, list[tuple[Any, ...]]],
) -> None:
    """The generator exercises what it claims: each time, frequency and consent rule
    blocks somewhere, some blocks are re-timed, and both sides of the borders allow."""
    _, _, want = portfolio
    decisions = Counter(d for d, *_ in want)
    reasons = Counter(r for _, rs, _, _ in want for r in rs)
    for rule in (
        "REGF-TIME-8TO9",
        "REGF-TIME-MULTITZ",
        "STATE-FL-FCCPA-HOURS",
        "STATE-OK-ADAD",
        "REGF-CALL-7IN7",
        "REGF-CALL-7AFTERCONV",
        "STATE-TX-FDCA",
        "STATE-MA-2IN7",
        "STATE-NYC-3IN7",
        "TCPA-PRERECORDED-RESIDENTIAL",
        "TCPA-CONSENT-WIRELESS",
        "TCPA-REVOKE-10BD",
        "REGF-MEDIUM-OPTOUT",
        "TCPA-RND",
    ):
        assert reasons[rule] > 0, rule
    assert decisions["allow"] > 300
    assert decisions["block"] > 300
    assert decisions["allow_with_modification"] > 0
    assert sum(1 for *_, nxt in want if nxt is not None) > 200


def test_hashed_ids_drop_events_of_other_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """History rows whose account is not in the portfolio are ignored on both key paths,
    and a repeated account id falls back to the string join (same decisions)."""
    accounts, events = edge_portfolio(300, seed=11, prefix="K")
    others, other_events = edge_portfolio(300, seed=12, prefix="X")
    mixed = pl.concat([other_events, events, other_events])
    want = _batch(accounts, events)
    for threshold in (0, 10**12):
        monkeypatch.setattr(batch, "HASHED_IDS_FROM_EVENTS", threshold)
        assert _batch(accounts, mixed) == want
    monkeypatch.setattr(batch, "HASHED_IDS_FROM_EVENTS", 0)
    doubled = pl.concat([accounts, accounts])
    out = evaluate_portfolio(doubled, events)
    got = [
        (r["decision"], tuple(r["reasons"]), r["modification"], r["next_allowed_at"])
        for r in out.iter_rows(named=True)
    ]
    assert got == want + want
    assert others.height == 300
