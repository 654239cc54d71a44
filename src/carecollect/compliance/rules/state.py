"""State and city rule units (RULES.md §4)."""

from __future__ import annotations

import datetime as dt

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import CALL_CHANNELS, Facts
from carecollect.compliance.rules.base import (
    Finding,
    block,
    check,
    describe_window,
    frequency_violation,
    modify,
    window_check,
)
from carecollect.compliance.rules.regf import _to_consumer_side, place_match, seven_in_seven

H8, H20, H21, H9, H730 = (dt.time(8), dt.time(20), dt.time(21), dt.time(9), dt.time(7, 30))
FL_EMAIL_EXCLUDED_FROM = dt.date(2025, 5, 16)
MA_COUNTED_CALL_OUTCOMES = frozenset({"conversation_rpc", "conversation_third_party",
                                      "voicemail_lcm", "voicemail_reached_no_message", None})


def _inconvenient_time_consent(f: Facts) -> bool:
    return f.has_consent(("inconvenient_time_ok",), f.action.contact_point)


@check("STATE-CA-ROSENTHAL")
def ca_rosenthal(f: Facts) -> Finding | None:
    # Applicability only: in legal_minimum the engine applies REGF-TIME-8TO9, REGF-ATTY,
    # REGF-WORK-PLACE, REGF-3P and REGF-CEASE to California creditors and cites this id.
    return None


@check("STATE-CA-MEDDEBT-CR")
def ca_meddebt(f: Facts) -> Finding | None:
    return block("STATE-CA-MEDDEBT-CR", "California bars furnishing medical debt to CRAs")


@check("STATE-NY-MEDDEBT-CR")
def ny_meddebt(f: Facts) -> Finding | None:
    return block("STATE-NY-MEDDEBT-CR", "NY-licensed providers may not report medical debt")


@check("STATE-CO-MEDDEBT-CR")
def co_meddebt(f: Facts) -> Finding | None:
    if f.channel == "credit_report_furnish":
        return block("STATE-CO-MEDDEBT-CR", "Colorado bars reporting medical debt")
    if not f.collector:
        return None
    earlier_letter = any(e.direction == "outbound" and e.channel == "letter" for e in f.history)
    if earlier_letter or "co_medical_debt_notice" in f.content.template.lower():
        return None
    return modify("STATE-CO-MEDDEBT-CR", "add_colorado_medical_debt_notice",
                  "first written communication must say medical debt will not be reported")


def _ma_personal(f: Facts, cp_id: str | None) -> bool:
    for cp in f.ctx.contact_points:
        if cp.id == cp_id:
            return not (cp.employer_provided or cp.owner == "employer")
    return True


def _ma_counted(f: Facts, debt_id: str, personal: bool) -> list[dt.datetime]:
    out = []
    for e in f.history:
        if e.direction != "outbound" or e.person != "debtor" or not f.about_debt(e, debt_id):
            continue
        if _ma_personal(f, e.contact_point) != personal:
            continue
        if (e.channel in CALL_CHANNELS and e.outcome in MA_COUNTED_CALL_OUTCOMES) or \
                (e.channel == "sms" and e.outcome != "undeliverable"):
            out.append(e.at)
    return out


@check("STATE-MA-2IN7")
def ma_2in7(f: Facts) -> Finding | None:
    if f.action.recipient != "debtor":
        return None
    personal = _ma_personal(f, f.action.contact_point)
    span = 7 if personal else 30
    for debt_id in f.debt_ids:
        hit = frequency_violation(f, _ma_counted(f, debt_id, personal), 2, span)
        if hit is not None:
            zone, count, earliest = hit
            kind = "personal" if personal else "other"
            return block("STATE-MA-2IN7", f"{count} initiated phone/text contacts about debt "
                         f"{debt_id} to {kind} numbers in {span} days ({zone}); MA allows 2",
                         earliest, ["PLAT-DAY-COUNT", "PLAT-ATTEMPT-VS-CONVERSATION"])
    return None


@check("STATE-MA-WORK")
def ma_work(f: Facts) -> Finding | None:
    if f.channel not in ("call", "voicemail") or place_match(f) != "work":
        return None
    return block("STATE-MA-WORK", "debtor asked not to be called at work")


@check("STATE-MA-HOUSEHOLD")
def ma_household(f: Facts) -> Finding | None:
    if f.action.recipient not in ("spouse", "parent") or not f.conveys_debt():
        return None
    return block("STATE-MA-HOUSEHOLD", "must not imply the debt to household members")


@check("STATE-NYC-3IN7")
def nyc_3in7(f: Facts) -> Finding | None:
    if f.action.recipient != "debtor":
        return None
    events = [e.at for e in f.history if e.direction == "outbound" and e.person == "debtor"
              and ((e.channel in CALL_CHANNELS and e.outcome != "not_connected")
                   or e.channel in ("sms", "email"))]
    hit = frequency_violation(f, events, 3, 7)
    if hit is None:
        return None
    zone, count, earliest = hit
    return block("STATE-NYC-3IN7", f"{count} communications or attempts in 7 days ({zone}); "
                 "NYC allows 3", earliest, ["PLAT-DAY-COUNT"])


@check("STATE-NYC-ECONSENT")
def nyc_econsent(f: Facts) -> Finding | None:
    cp_id = f.action.contact_point
    if f.channel == "email":
        ok = f.has_consent(("email_use", "esign"), cp_id)
    else:
        ok = cp_id is not None and f.tcpa_state(cp_id)[0] is not None
    if ok:
        return None
    return block("STATE-NYC-ECONSENT", f"NYC requires the consumer's consent to {f.channel}")


@check("STATE-WA-3PERWEEK")
def wa_3perweek(f: Facts) -> Finding | None:
    if f.action.recipient not in ("debtor", "spouse"):
        return None
    work = f.cp is not None and (f.cp.employer_provided or f.cp.owner == "employer")
    if f.channel in ("call", "voicemail") and not work:
        bad, earliest = window_check(f, H730, H21)
        if bad:
            return block("STATE-WA-3PERWEEK", describe_window(f.t, bad, H730, H21), earliest,
                         ["PLAT-TIME-BOUNDARY"])
    work_ids = {cp.id for cp in f.ctx.contact_points if cp.employer_provided
                or cp.owner == "employer"}
    comms = [e for e in f.history if e.direction == "outbound"
             and e.person in ("debtor", "spouse")
             and e.outcome not in ("not_connected", "no_answer", "undeliverable")]
    hit = frequency_violation(f, [e.at for e in comms], 3, 7)
    if hit is not None:
        zone, count, earliest = hit
        return block("STATE-WA-3PERWEEK", f"{count} communications in 7 days ({zone}); WA "
                     "allows 3", earliest, ["PLAT-DAY-COUNT"])
    if work:
        hit = frequency_violation(f, [e.at for e in comms if e.contact_point in work_ids], 1, 7)
        if hit is not None:
            zone, count, earliest = hit
            return block("STATE-WA-3PERWEEK", "one workplace communication per week already "
                         f"made ({zone})", earliest, ["PLAT-DAY-COUNT"])
    return None


@check("STATE-FL-FCCPA-HOURS")
def fl_hours(f: Facts) -> Finding | None:
    if f.channel == "email" and f.on >= FL_EMAIL_EXCLUDED_FROM:
        return None  # SB 232 (2025) removed email from 559.72(17)
    if not _to_consumer_side(f):
        return None
    bad, earliest = window_check(f, H8, H21)
    if not bad or _inconvenient_time_consent(f):
        return None
    return block("STATE-FL-FCCPA-HOURS", describe_window(f.t, bad, H8, H21), earliest,
                 ["PLAT-TIME-BOUNDARY", "PLAT-TZ-RESOLVE"])


def _solicitation(f: Facts, rule_id: str, label: str) -> Finding | None:
    if not (f.content.marketing or "marketing_offer" in f.tags):
        return None
    bad, earliest = window_check(f, H8, H20)
    if bad:
        return block(rule_id, describe_window(f.t, bad, H8, H20) + f" ({label})", earliest,
                     ["PLAT-TIME-BOUNDARY"])
    cp_id = f.action.contact_point
    recent = sorted((e.at for e in f.history if e.direction == "outbound"
                     and e.channel in ("call", "voicemail", "sms") and e.contact_point == cp_id
                     and f.t - e.at < dt.timedelta(hours=24)), reverse=True)
    if len(recent) >= 3:
        return block(rule_id, f"3 solicitation calls/texts in 24 hours ({label})",
                     recent[2] + dt.timedelta(hours=24))
    return None


@check("STATE-FL-TELEMKT")
def fl_telemarketing(f: Facts) -> Finding | None:
    return _solicitation(f, "STATE-FL-TELEMKT", "Fla. Stat. 501.616")


@check("STATE-OK-TSA")
def ok_tsa(f: Facts) -> Finding | None:
    return _solicitation(f, "STATE-OK-TSA", "15 O.S. 775C")


@check("STATE-MD-SPAM")
def md_spam(f: Facts) -> Finding | None:
    return _solicitation(f, "STATE-MD-SPAM", "Md. Com. Law 14-4503")


@check("STATE-OK-ADAD")
def ok_adad(f: Facts) -> Finding | None:
    if f.action.dialer != "prerecorded":
        return None
    bad, earliest = window_check(f, H9, H21)
    if not bad:
        return None
    return block("STATE-OK-ADAD", describe_window(f.t, bad, H9, H21) + " for prerecorded "
                 "calls into Oklahoma", earliest, ["PLAT-TIME-BOUNDARY"])


@check("STATE-TX-FDCA")
def tx_fdca(f: Facts) -> Finding | None:
    # Harassment standard; the Reg F 7-in-7 presumption is the engineering proxy.
    return seven_in_seven(f, "STATE-TX-FDCA")


@check("STATE-SUNDAY")
def sunday(f: Facts) -> Finding | None:
    return None  # no verified ban; tenant quiet days live in the organization overlay


_ = tz
