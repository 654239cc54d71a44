"""Random portfolios in the batch path's domain (synthetic accounts only)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl

from carecollect.compliance.batch import ACCOUNT_SCHEMA, EVENT_SCHEMA

UTC = dt.UTC
STATES = [  # state, zip, mailing zone, NYC
    ("NY", "12207", "America/New_York", False), ("NY", "10001", "America/New_York", True),
    ("MA", "02108", "America/New_York", False), ("FL", "33101", "America/New_York", False),
    ("OK", "74103", "America/Chicago", False), ("TX", "75201", "America/Chicago", False),
    ("CA", "94103", "America/Los_Angeles", False), ("AZ", "85004", "America/Phoenix", False),
    ("PA", "15213", "America/New_York", False), ("CO", "80202", "America/Denver", False),
]
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
         "America/Los_Angeles", "Pacific/Honolulu", "America/Anchorage"]
PHONES = ["+15185550101", "+12135550101", "+13125550101", "+16025550101", "+19075550101"]
OUTCOMES = ["not_connected", "no_answer", "voicemail_reached_no_message", "voicemail_lcm",
            "conversation_rpc", "conversation_third_party", None]
# Instants around both 2026 DST transitions and ordinary days.
BASES = [dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC), dt.datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
         dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC), dt.datetime(2026, 6, 15, 0, 0, tzinfo=UTC)]


def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else None


def random_portfolio(rng: random.Random, n: int, max_events: int = 12,
                     prefix: str = "A") -> tuple[pl.DataFrame, pl.DataFrame]:
    accounts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in range(n):
        state, zip_code, zone, nyc = rng.choice(STATES)
        t = rng.choice(BASES) + dt.timedelta(minutes=rng.randrange(0, 2 * 24 * 60),
                                             seconds=rng.choice([0, 0, 59]))
        channel = rng.choice(["call", "call", "sms", "email", "voicemail"])
        dialer = None if channel in ("sms", "email") else rng.choice(
            ["manual", "autodialer", "prerecorded", None])

        def before(days: float, t: dt.datetime = t) -> dt.datetime:
            return t - dt.timedelta(minutes=rng.randrange(1, int(days * 24 * 60) + 2))

        revoke_at = _maybe(rng, 0.25, before(20))
        revoke_cp = rng.choice(["phone", "phone", "email"]) if revoke_at else None
        revoke_channel = None
        if revoke_cp == "phone":
            revoke_channel = rng.choice(["sms", "call", "all"])
        elif revoke_cp == "email":
            revoke_channel = "email"
        account_id = f"{prefix}{i:07d}"
        accounts.append({
            "account_id": account_id, "profile": rng.choice(["strict", "strict",
                                                             "legal_minimum"]),
            "state": state, "zip": zip_code, "city_is_nyc": nyc, "mailing_tz": zone,
            "other_tz": _maybe(rng, 0.15, rng.choice(ZONES)),
            "phone_value": rng.choice(PHONES),
            "line_type": rng.choice(["wireless", "wireless", "landline", "voip", None]),
            "area_code_tz": _maybe(rng, 0.6, rng.choice(ZONES)),
            "rnd_date": _maybe(rng, 0.7, (t - dt.timedelta(days=rng.randrange(0, 60))).date()),
            "rnd_result": rng.choice(["no", "no", "yes", "no_data"]),
            "consent_at": _maybe(rng, 0.7, before(90)),
            "reconsent_at": _maybe(rng, 0.1, before(5)),
            "email_consent_at": _maybe(rng, 0.6, before(60)),
            "extra_calls_consent_at": _maybe(rng, 0.1, before(10)),
            "revoke_at": revoke_at, "revoke_channel": revoke_channel, "revoke_cp": revoke_cp,
            "deceased": rng.random() < 0.02,
            "bankruptcy_at": _maybe(rng, 0.02, before(30)),
            "cease_at": _maybe(rng, 0.02, before(30)),
            "attorney_at": _maybe(rng, 0.02, before(30)),
            "nsa_status": _maybe(rng, 0.03, rng.choice(["ppdr_pending",
                                                        "prohibited_balance_bill"])),
            "channel": channel, "dialer": dialer, "time": t,
        })
        for _ in range(rng.randrange(0, max_events + 1)):
            ch = rng.choice(["call", "call", "call", "voicemail", "sms", "email", "letter"])
            direction = "inbound" if rng.random() < 0.15 else "outbound"
            if ch in ("call", "voicemail"):
                outcome = rng.choice(OUTCOMES)
                ev_dialer = rng.choice(["manual", "autodialer", "prerecorded"])
            else:
                outcome = rng.choice(["delivered", "undeliverable", None])
                ev_dialer = None
            cp = {"email": "email", "letter": "mail"}.get(ch, "phone")
            events.append({"account_id": account_id, "at": before(35), "channel": ch,
                           "direction": direction, "outcome": outcome, "dialer": ev_dialer,
                           "about_debt": rng.random() < 0.85, "cp": cp})
    acc = pl.DataFrame(accounts, schema=ACCOUNT_SCHEMA)
    ev = pl.DataFrame(events, schema=EVENT_SCHEMA)
    return acc, ev
