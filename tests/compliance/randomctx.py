"""Broad random scenario inputs for property tests (synthetic people only)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from tests.compliance.builders import base_input, merge

ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
         "America/Los_Angeles", "Pacific/Honolulu"]
PLACES = [("NY", "12207", "America/New_York", False), ("NY", "10001", "America/New_York", True),
          ("MA", "02108", "America/New_York", False), ("FL", "33101", "America/New_York", False),
          ("OK", "74103", "America/Chicago", False), ("TX", "75201", "America/Chicago", False),
          ("CA", "94103", "America/Los_Angeles", False), ("WA", "98101", "America/Los_Angeles",
                                                          False),
          ("AZ", "85004", "America/Phoenix", False), ("CO", "80202", "America/Denver", False)]
BASES = [dt.datetime(2026, 3, 8, 5, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
         dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC), dt.datetime(2026, 7, 3, tzinfo=dt.UTC)]
INBOUND_TEXTS = [None, "STOP", "ok thanks", "when is it due?", "please stop texting me",
                 "I have a lawyer", "START"]


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def random_input(rng: random.Random, *, channel: str | None = None) -> dict[str, Any]:
    state, zip_code, zone, nyc = rng.choice(PLACES)
    t = rng.choice(BASES) + dt.timedelta(minutes=rng.randrange(0, 48 * 60),
                                         seconds=rng.choice([0, 59]))

    def before(days: float) -> str:
        return iso(t - dt.timedelta(minutes=rng.randrange(1, int(days * 1440) + 2)))

    channel = channel or rng.choice(["call", "sms", "email", "voicemail", "letter",
                                     "credit_report_furnish"])
    dialer = rng.choice(["manual", "autodialer", "prerecorded", None]) \
        if channel in ("call", "voicemail") else None
    third = rng.random() < 0.3
    cp_for = {"call": "cp_cell", "voicemail": "cp_cell", "sms": "cp_cell",
              "email": "cp_email", "letter": "cp_mail"}
    contains = rng.sample(["practice_name_neutral", "balance_amount", "neutral_notice",
                           "payment_link_opaque", "service_description"], k=rng.randrange(1, 3))
    if channel == "voicemail" and rng.random() < 0.7:
        contains = ["lcm_required_only", "practice_name_neutral"]
    base = base_input()
    cell = dict(base["contact_points"][0])
    cell.update(line_type=rng.choice(["wireless", "wireless", "landline", "voip", None]),
                area_code_tz=rng.choice(ZONES),
                rnd_check=rng.choice([None, {"date": (t - dt.timedelta(days=rng.randrange(0, 50)))
                                             .date().isoformat(),
                                             "result": rng.choice(["no", "yes", "no_data"])}]))
    consents = []
    if rng.random() < 0.7:
        consents.append({"contact_point": "cp_cell", "kind": rng.choice(["tcpa_pec",
                                                                         "tcpa_pewc"]),
                         "granted_at": before(80), "given_to": rng.choice(
                             ["creditor", "debt_collector"]), "method": "form"})
    if rng.random() < 0.5:
        consents.append({"contact_point": "cp_email", "kind": "email_use",
                         "granted_at": before(80), "given_to": "creditor", "method": "portal"})
    revocations = []
    if rng.random() < 0.2:
        revocations.append({"contact_point": rng.choice(["cp_cell", "cp_email"]),
                            "channel": rng.choice(["sms", "call", "email", "all"]),
                            "received_at": before(20), "method": "oral", "text": None})
    history = []
    for _ in range(rng.randrange(0, 10)):
        ch = rng.choice(["call", "call", "sms", "email", "letter", "voicemail"])
        direction = "inbound" if rng.random() < 0.15 else "outbound"
        history.append({
            "text": rng.choice(INBOUND_TEXTS) if direction == "inbound" and ch == "sms" else None,
            "at": before(30), "channel": ch, "direction": direction,
            "contact_point": cp_for.get(ch, "cp_cell"), "person": "debtor",
            "debt_ids": ["D1"], "dialer": "manual" if ch in ("call", "voicemail") else None,
            "outcome": rng.choice(["no_answer", "not_connected", "conversation_rpc",
                                   "voicemail_lcm", "delivered", None])})
    patch: dict[str, Any] = {
        "as_of": iso(t), "policy_profile": rng.choice(["strict", "legal_minimum"]),
        "debtor": {"state": state, "zip": zip_code, "mailing_tz": zone, "city_is_nyc": nyc,
                   "other_known_tz": rng.sample(ZONES, k=rng.choice([0, 0, 1]))},
        "contact_points": [cell, *base["contact_points"][1:]],
        "consents": consents, "revocations": revocations, "contact_history": history,
        "proposed_action": {"channel": channel, "contact_point": cp_for.get(channel),
                            "time": iso(t), "dialer": dialer,
                            "recipient": "consumer_reporting_agency"
                            if channel == "credit_report_furnish" else "debtor",
                            "content": {"template": "reminder", "contains": contains,
                                        "includes_opt_out": rng.random() < 0.8,
                                        "includes_debt_collector_disclosure": third}},
    }
    if third:
        patch["creditor"] = {"type": "third_party", "entity_kind": "collection_agency",
                             "display_name": "Evergreen Account Services",
                             "hipaa_role": "business_associate", "baa_in_place": True}
    return merge(base, patch)
