"""TCPA rule units (RULES.md §3; 47 USC 227, 47 CFR 64.1200)."""

from __future__ import annotations

import datetime as dt

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import CALL_CHANNELS, Facts, Revoke
from carecollect.compliance.rules.base import (
    Finding,
    block,
    check,
    describe_window,
    frequency_violation,
    modify,
    window_check,
)

CONFIRM_WINDOW = dt.timedelta(minutes=5)
RND_MAX_AGE = dt.timedelta(days=30)


def wireless_like(f: Facts) -> bool:
    """Numbers treated as wireless: wireless, unknown (fail closed), VoIP under strict."""
    cp = f.cp
    if cp is None:
        return False
    if cp.line_type in ("wireless", None):
        return True
    return cp.line_type == "voip" and f.strict


def is_confirmation(f: Facts) -> bool:
    return f.channel == "sms" and "confirm" in f.content.template.lower() and \
        not f.content.marketing and "marketing_offer" not in f.tags


def revocation_confirmation_ok(f: Facts, revoked_at: dt.datetime) -> bool:
    """TCPA-REVOKE-CONFIRM: one confirmation text, within 5 minutes under strict."""
    if not is_confirmation(f):
        return False
    cp_id = f.action.contact_point
    sent_since = any(e.direction == "outbound" and e.channel == "sms"
                     and e.contact_point == cp_id and e.at >= revoked_at for e in f.history)
    if sent_since:
        return False
    return not (f.strict and f.t - revoked_at > CONFIRM_WINDOW)


def _revocation_cites(f: Facts, revoke: Revoke) -> list[str]:
    cites = ["TCPA-REVOKE-ANYMEANS", "TCPA-REVOKE-10BD", "TCPA-RECONSENT"]
    if f.strict:
        cites.append("PLAT-HONOR-IMMEDIATELY")
        channel_medium = "call" if f.channel in CALL_CHANNELS else f.channel
        if channel_medium not in revoke.media:
            cites.append("TCPA-REVOKE-ALL")
    if revoke.source in ("nlu", "fallback"):
        cites.append("PLAT-REVOKE-NLU")
    return cites


@check("TCPA-CONSENT-WIRELESS")
def consent_wireless(f: Facts) -> Finding | None:
    if not f.automated or not wireless_like(f) or f.cp is None:
        return None
    grant, revoke = f.tcpa_state(f.cp.id)
    if grant is not None:
        return None
    if revoke is not None:
        if revocation_confirmation_ok(f, revoke.at):
            return None
        return block("TCPA-CONSENT-WIRELESS", "consent to automated calls/texts to this "
                     "number was revoked", also=_revocation_cites(f, revoke))
    return block("TCPA-CONSENT-WIRELESS", "no prior express consent for an automated call or "
                 "text to a wireless number", also=["TCPA-HC-EXEMPT-NA"])


@check("TCPA-PATIENT-ROOM")
def patient_room(f: Facts) -> Finding | None:
    if not f.automated or f.cp is None or f.cp.line_type != "hospital_patient_room":
        return None
    grant, _ = f.tcpa_state(f.cp.id)
    if grant is not None:
        return None
    return block("TCPA-PATIENT-ROOM", "automated call to a patient-room line without consent")


@check("TCPA-PRERECORDED-RESIDENTIAL")
def prerecorded_residential(f: Facts) -> Finding | None:
    cp = f.cp
    if cp is None or f.action.dialer != "prerecorded" or cp.line_type != "landline":
        return None
    grant, _ = f.tcpa_state(cp.id)
    if grant is not None:
        return None
    prior = [e.at for e in f.history if e.direction == "outbound" and
             e.channel in CALL_CHANNELS and e.dialer == "prerecorded" and
             e.contact_point == cp.id and e.outcome != "not_connected"]
    hit = frequency_violation(f, prior, 3, 30)
    if hit is None:
        return None
    zone, count, earliest = hit
    return block("TCPA-PRERECORDED-RESIDENTIAL", f"{count} prerecorded calls to this "
                 f"residential line in 30 days ({zone}) without consent", earliest,
                 ["PLAT-DAY-COUNT"])


@check("TCPA-PRERECORDED-ID")
def prerecorded_id(f: Facts) -> Finding | None:
    if f.action.dialer != "prerecorded" or f.content.includes_opt_out:
        return None
    return modify("TCPA-PRERECORDED-ID", "add_identification_and_automated_opt_out",
                  "prerecorded message needs the business name, a callback number and an "
                  "automated opt-out")


@check("TCPA-HC-EXEMPT-NA")
def healthcare_exemption(f: Facts) -> Finding | None:
    # Informational within the engine: cited by TCPA-CONSENT-WIRELESS when consent is
    # missing, because billing content cannot use the 64.1200(a)(9)(iv) exemption.
    return None


@check("TCPA-REVOKE-ANYMEANS")
def revoke_anymeans(f: Facts) -> Finding | None:
    return None  # applied through Facts.tcpa_timeline (keywords + NLU); cited on block


@check("TCPA-REVOKE-10BD")
def revoke_10bd(f: Facts) -> Finding | None:
    return None  # applied through Facts.tcpa_state (strict: at once; legal: 10 business days)


@check("TCPA-REVOKE-ALL")
def revoke_all(f: Facts) -> Finding | None:
    return None  # a revocation on one stream covers every automated call/text to the number


@check("TCPA-RECONSENT")
def reconsent(f: Facts) -> Finding | None:
    return None  # latest event wins (Facts.tcpa_state)


@check("TCPA-REVOKE-CONFIRM")
def revoke_confirm(f: Facts) -> Finding | None:
    if f.cp is None or not is_confirmation(f):
        return None
    _, revoke = f.tcpa_state(f.cp.id)
    if revoke is None:
        return None
    if revocation_confirmation_ok(f, revoke.at):
        return None
    return block("TCPA-REVOKE-CONFIRM", "only one confirmation text, without marketing, "
                 "within 5 minutes of the revocation", also=_revocation_cites(f, revoke))


@check("TCPA-RND")
def rnd(f: Facts) -> Finding | None:
    if not f.automated or not wireless_like(f) or f.cp is None:
        return None
    grant, _ = f.tcpa_state(f.cp.id)
    if grant is None:
        return None  # TCPA-CONSENT-WIRELESS decides
    check_ = f.cp.rnd_check
    consent_day = tz.local_date(grant.at, f.primary_zone)
    today = tz.local_date(f.t, f.primary_zone)
    if check_ is not None and check_.result == "yes" and check_.date >= consent_day:
        return block("TCPA-RND", "the number was reassigned/disconnected after consent; "
                     "consent is void")
    if not f.strict or f.t - grant.at <= RND_MAX_AGE:
        return None
    fresh = check_ is not None and check_.date >= today - dt.timedelta(days=30)
    if not fresh or check_ is None:
        return block("TCPA-RND", "consent older than 30 days and no RND query in the last "
                     "30 days", also=["PLAT-RND-CADENCE"])
    if check_.result == "no_data":
        if f.channel in CALL_CHANNELS:
            return modify("TCPA-RND", "manual_live_call_only",
                          "RND returned no_data: only a manual live call may be placed",
                          also=["PLAT-RND-CADENCE"])
        return block("TCPA-RND", "RND returned no_data: automated texts are not allowed",
                     also=["PLAT-RND-CADENCE"])
    return None


@check("TCPA-MARKETING-PEWC")
def marketing_pewc(f: Facts) -> Finding | None:
    marketing = f.content.marketing or "marketing_offer" in f.tags
    if not marketing or not f.automated or not wireless_like(f) or f.cp is None:
        return None
    grant, _ = f.tcpa_state(f.cp.id, written=True)
    if grant is not None:
        return None
    return block("TCPA-MARKETING-PEWC", "marketing content by automated call/text needs "
                 "prior express written consent")


H8, H21 = dt.time(8, 0), dt.time(21, 0)


@check("TCPA-SOLICIT-HOURS")
def solicit_hours(f: Facts) -> Finding | None:
    if not (f.content.marketing or "marketing_offer" in f.tags):
        return None
    bad, earliest = window_check(f, H8, H21)
    if not bad:
        return None
    return block("TCPA-SOLICIT-HOURS", describe_window(f.t, bad, H8, H21), earliest,
                 ["PLAT-TIME-BOUNDARY"])
