"""Property tests of the engine's safety invariants (hypothesis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import zipcodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.compliance.engine import at_time, evaluate
from carecollect.compliance.scenario import (
    AttorneyFlag,
    BankruptcyFlag,
    CeaseFlag,
    Context,
    HistoryEvent,
    Revocation,
    parse_context,
)
from tests.compliance.randomctx import ZONES, random_input

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _ctx(data: dict[str, Any]) -> Context:
    return parse_context(data)


@SETTINGS
@given(st.randoms(use_true_random=False), st.sampled_from(["sms", "call", "voicemail"]),
       st.sampled_from(["none", "revoked_record", "revoked_stop"]))
def test_no_automated_contact_to_wireless_without_live_consent(
        rnd: random.Random, channel: str, consent: str) -> None:
    data = random_input(rnd, channel=channel)
    action = data["proposed_action"]
    if channel != "sms":
        action["dialer"] = rnd.choice(["autodialer", "prerecorded"])
    data["contact_points"][0]["line_type"] = "wireless"
    t = dt.datetime.fromisoformat(action["time"])
    # Drop every grant on the number; optionally add a binding revocation after consent.
    data["consents"] = [c for c in data["consents"] if c["contact_point"] != "cp_cell"]
    data["contact_history"] = [e for e in data["contact_history"]
                               if not (e["direction"] == "inbound" and e["text"])]
    if consent != "none":
        granted = t - dt.timedelta(days=60)
        revoked = t - dt.timedelta(days=25)  # > 10 business days: binds in both profiles
        data["consents"].append({"contact_point": "cp_cell", "kind": "tcpa_pec",
                                 "granted_at": granted.isoformat(), "given_to": "creditor",
                                 "method": "form"})
        if consent == "revoked_record":
            data["revocations"].append({"contact_point": "cp_cell", "channel": "sms",
                                        "received_at": revoked.isoformat(), "method": "oral",
                                        "text": None})
        else:
            data["contact_history"].append({
                "text": "STOP", "at": revoked.isoformat(), "channel": "sms",
                "direction": "inbound", "contact_point": "cp_cell", "person": "debtor",
                "debt_ids": ["D1"], "dialer": None, "outcome": None})
    decision = evaluate(_ctx(data))
    assert decision.decision == "block"
    assert "TCPA-CONSENT-WIRELESS" in decision.reasons


def _candidate_zones(ctx: Context) -> set[str]:
    zones = {ctx.debtor.mailing_tz, *ctx.debtor.other_known_tz}
    zones |= {m["timezone"] for m in zipcodes.matching(ctx.debtor.zip)}
    if ctx.proposed_action.channel in ("call", "sms", "voicemail"):
        cp = next(c for c in ctx.contact_points if c.id == ctx.proposed_action.contact_point)
        assert cp.area_code_tz is not None
        zones.add(cp.area_code_tz)
    return zones


@SETTINGS
@given(st.randoms(use_true_random=False),
       st.sampled_from(["call", "sms", "email", "voicemail"]))
def test_no_time_restricted_contact_outside_the_window(rnd: random.Random,
                                                       channel: str) -> None:
    data = random_input(rnd, channel=channel)
    data["policy_profile"] = "strict"
    data["contact_history"] = [e for e in data["contact_history"]
                               if e["direction"] == "outbound"]  # no reply exception
    ctx = _ctx(data)
    decision = evaluate(ctx)
    if decision.decision == "block":
        return
    for zone in _candidate_zones(ctx):
        clock = ctx.proposed_action.time.astimezone(ZoneInfo(zone)).time()
        assert dt.time(8) <= clock < dt.time(21), (zone, clock)


def _more(ctx: Context, what: str, rnd: random.Random) -> Context:
    t = ctx.proposed_action.time
    earlier = t - dt.timedelta(hours=rnd.randrange(1, 200))
    if what == "revocation":
        rev = Revocation(contact_point=rnd.choice(["cp_cell", "cp_email", None]),
                         channel=rnd.choice(["sms", "call", "email", "all"]),
                         received_at=earlier)
        return dataclasses.replace(ctx, revocations=(*ctx.revocations, rev))
    if what == "flag":
        flags = ctx.flags
        choice = rnd.choice(["bankruptcy", "cease", "attorney"])
        if choice == "bankruptcy" and flags.bankruptcy is None:
            flags = dataclasses.replace(flags, bankruptcy=BankruptcyFlag(
                filed_at=earlier, chapter=13, status="filed"))
        elif choice == "cease" and flags.cease_requested is None:
            flags = dataclasses.replace(flags, cease_requested=CeaseFlag(
                received_at=earlier, in_writing=True))
        elif choice == "attorney" and flags.attorney_represented is None:
            flags = dataclasses.replace(flags, attorney_represented=AttorneyFlag(
                since=earlier, attorney_name_known=True))
        return dataclasses.replace(ctx, flags=flags)
    if what == "call":
        event = HistoryEvent(at=earlier, channel="call", direction="outbound",
                             contact_point="cp_cell", debt_ids=("D1",), dialer="manual",
                             outcome=rnd.choice(["no_answer", "voicemail_lcm", "not_connected"]))
        return dataclasses.replace(ctx, contact_history=(*ctx.contact_history, event))
    debtor = dataclasses.replace(ctx.debtor, other_known_tz=(*ctx.debtor.other_known_tz,
                                                             rnd.choice(ZONES)))
    return dataclasses.replace(ctx, debtor=debtor)


@SETTINGS
@given(st.randoms(use_true_random=False),
       st.sampled_from(["revocation", "flag", "call", "zone"]))
def test_adding_facts_never_turns_a_block_into_an_allow(rnd: random.Random,
                                                        what: str) -> None:
    ctx = _ctx(random_input(rnd))
    if evaluate(ctx).decision != "block":
        return
    assert evaluate(_more(ctx, what, rnd)).decision == "block"


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_next_allowed_at_is_allowed_when_re_evaluated(rnd: random.Random) -> None:
    ctx = _ctx(random_input(rnd))
    decision = evaluate(ctx)
    if decision.next_allowed_at is None:
        return
    assert decision.decision == "block"
    assert decision.next_allowed_at > ctx.proposed_action.time
    again = evaluate(at_time(ctx, decision.next_allowed_at))
    assert again.decision != "block"
    # and one second earlier it was still blocked (earliest, not just some later instant)
    before = evaluate(at_time(ctx, decision.next_allowed_at - dt.timedelta(seconds=1)))
    assert before.decision == "block"
