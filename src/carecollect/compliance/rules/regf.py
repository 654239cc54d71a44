"""FDCPA / Regulation F rule units (RULES.md §2, 12 CFR part 1006)."""

from __future__ import annotations

import datetime as dt
import functools
import re

from carecollect.compliance import zones as tz
from carecollect.compliance.businessdays import validation_period_end
from carecollect.compliance.facts import CALL_CHANNELS, CONVERSATION, Facts, medium_of
from carecollect.compliance.rules.base import (
    Finding,
    block,
    check,
    describe_window,
    modify,
    window_check,
)

H8, H21 = dt.time(8, 0), dt.time(21, 0)
DAY = dt.timedelta(days=1)
CONSENT_REPLY_WINDOW = dt.timedelta(hours=24)
RECIPIENTS_AS_CONSUMER = frozenset({"debtor", "spouse", "personal_representative", "attorney"})
COLLECTION_WORDS = ("collect", "recovery", "debt", "past due", "overdue", "delinquen")
SENSITIVE_WORDS = ("behavioral", "psychiatr", "mental", "counseling", "therapy", "oncology",
                   "cancer", "hiv", "aids", "fertility", "ivf", "reproductive", "abortion",
                   "dermatology", "cosmetic", "plastic surg", "addiction", "substance",
                   "rehab", "detox", "methadone", "sexual health", "std ", "sud ")


@functools.lru_cache(maxsize=4096)
def _name_words(display_name: str) -> tuple[bool, bool]:
    name = " " + display_name.lower() + " "
    return (any(w in name for w in SENSITIVE_WORDS), any(w in name for w in COLLECTION_WORDS))


def name_flags(f: Facts) -> tuple[bool, bool]:
    """(reveals a sensitive specialty, indicates debt collection) of the display name."""
    sensitive, collection = _name_words(f.ctx.creditor.display_name)
    return (sensitive or "practice_name_sensitive" in f.tags,
            collection or f.ctx.creditor.name_indicates_debt_collection)


def _time_exception(f: Facts) -> bool:
    got = f.memo.get("time_exception")
    if got is None:
        got = _time_exception_uncached(f)
        f.memo["time_exception"] = got
    return bool(got)


def _time_exception_uncached(f: Facts) -> bool:
    # 1006.6(b)(4): the consumer's direct prior consent; and one reply through the same
    # medium to a consumer-initiated contact (platform bound: within 24 hours).
    given_to = "debt_collector" if f.collector and f.ctx.creditor.type == "third_party" \
        else None
    if f.has_consent(("inconvenient_time_ok",), f.action.contact_point, given_to):
        return True
    return f.consumer_initiated_reply(medium_of(f.channel), None, CONSENT_REPLY_WINDOW)


@check("REGF-TIME-8TO9")
def time_8to9(f: Facts) -> Finding | None:
    bad, earliest = window_check(f, H8, H21)
    if not bad or _time_exception(f):
        return None
    also = ["PLAT-TIME-BOUNDARY", "PLAT-TZ-RESOLVE"]
    if any(z != f.primary_zone for z in bad):
        also.append("REGF-TIME-MULTITZ")
    return block("REGF-TIME-8TO9", describe_window(f.t, bad, H8, H21), earliest, also)


@check("REGF-TIME-MULTITZ")
def time_multitz(f: Facts) -> Finding | None:
    if len(f.zones) < 2:
        return None
    bad, earliest = window_check(f, H8, H21)
    if not any(z != f.primary_zone for z in bad) or _time_exception(f):
        return None
    return block("REGF-TIME-MULTITZ",
                 describe_window(f.t, bad, H8, H21) + " (candidate zones: "
                 + ", ".join(f.zones) + ")", earliest, ["PLAT-TZ-RESOLVE"])


_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_BEFORE = re.compile(r"^\s*before\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)
_AFTER = re.compile(r"^\s*after\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_range(value: str) -> tuple[dt.time, dt.time | None] | None:
    """An inconvenient local range [a, b); b None means until midnight."""
    if m := _RANGE.match(value):
        return dt.time(int(m[1]), int(m[2])), dt.time(int(m[3]), int(m[4]))
    if m := _BEFORE.match(value):
        return dt.time(0, 0), dt.time(int(m[1]), int(m[2]))
    if m := _AFTER.match(value):
        return dt.time(int(m[1]), int(m[2])), None
    return None


def _in_range(clock: dt.time, start: dt.time, end: dt.time | None) -> bool:
    if end is None:
        return clock >= start
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end  # wraps midnight


def _designated_block(f: Facts, zone: str, value: str, kind: str) -> dt.datetime | None:
    """If `t` falls in the designation (local in `zone`), the instant it ends; else None."""
    loc = tz.local(f.t, zone)
    if kind == "time":
        parsed = _parse_range(value)
        if parsed is None or not _in_range(loc.time(), *parsed):
            return None
        start, end = parsed
        if end is None or (start > end and loc.time() >= start):
            return tz.day_start(loc.date() + DAY, zone)
        return tz.at_local(loc.date(), end, zone)
    if kind == "day":
        text = value.strip().lower()
        try:
            blocked = dt.date.fromisoformat(text) == loc.date()
        except ValueError:
            blocked = any(text.startswith(w) for w in _WEEKDAYS) and \
                _WEEKDAYS[loc.weekday()] == text[:3]
        return tz.day_start(loc.date() + DAY, zone) if blocked else None
    return None


@check("REGF-TIME-DESIGNATED")
def time_designated(f: Facts) -> Finding | None:
    latest: dt.datetime | None = None
    hits: list[str] = []
    for d in f.ctx.debtor.designated_inconvenient:
        if d.kind == "place" or d.at > f.t:
            continue
        for zone in f.zones:
            end = _designated_block(f, zone, d.value, d.kind)
            if end is not None:
                hits.append(f"{d.kind} '{d.value}' in {zone}")
                latest = end if latest is None or end > latest else latest
    if latest is None:
        return None
    # One response to a consumer-initiated contact is allowed, then re-block (RULES.md).
    if f.consumer_initiated_reply(medium_of(f.channel), None, CONSENT_REPLY_WINDOW):
        return None
    return block("REGF-TIME-DESIGNATED",
                 "consumer designated as inconvenient: " + "; ".join(sorted(set(hits))),
                 latest.astimezone(dt.UTC))


PLACE_WORK = ("work", "job", "office", "employer")
PLACE_HOSPITAL = ("hospital", "clinic")
PLACE_HOME = ("home", "house", "residence")


def designated_places(f: Facts) -> list[str]:
    return [d.value.lower() for d in f.ctx.debtor.designated_inconvenient
            if d.kind == "place" and d.at <= f.t]


def _is_work_point(f: Facts) -> bool:
    cp = f.cp
    return cp is not None and (cp.employer_provided or cp.owner == "employer")


def place_match(f: Facts) -> str | None:
    cp = f.cp
    if cp is None or f.channel not in ("call", "voicemail", "sms", "email"):
        return None
    for place in designated_places(f):
        if any(w in place for w in PLACE_WORK) and _is_work_point(f):
            return "work"
        if any(w in place for w in PLACE_HOSPITAL) and cp.line_type == "hospital_patient_room":
            return "hospital"
        if any(w in place for w in PLACE_HOME) and cp.type == "phone" and \
                cp.line_type == "landline" and not _is_work_point(f):
            return "home"
    return None


@check("REGF-PLACE")
def place(f: Facts) -> Finding | None:
    where = place_match(f)
    if where is None:
        return None
    return block("REGF-PLACE", f"the consumer designated {where} as an inconvenient place")


@check("REGF-WORK-PLACE")
def work_place(f: Facts) -> Finding | None:
    if place_match(f) != "work":
        return None
    return block("REGF-WORK-PLACE",
                 "workplace contact after the consumer said it is not allowed there")


@check("REGF-WORK-EMAIL")
def work_email(f: Facts) -> Finding | None:
    if not _is_work_point(f):
        return None
    cp_id = f.action.contact_point
    used = any(e.direction == "inbound" and e.channel == "email" and e.contact_point == cp_id
               for e in f.history)
    given_to = "debt_collector" if f.ctx.creditor.type == "third_party" else None
    if used or f.has_consent(("email_use",), cp_id, given_to):
        return None
    return block("REGF-WORK-EMAIL",
                 "employer-provided email address without the consumer's use or consent")


def _to_consumer_side(f: Facts) -> bool:
    return f.action.recipient != "attorney"


@check("REGF-ATTY")
def attorney(f: Facts) -> Finding | None:
    flag = f.ctx.flags.attorney_represented
    if flag is None or flag.since > f.t or not flag.attorney_name_known:
        return None
    if not _to_consumer_side(f):
        return None
    # Attorney non-response (30 days, platform) routes to human review; it never re-opens
    # direct contact automatically.
    return block("REGF-ATTY", "consumer is represented by a known attorney; contact the "
                 "attorney only")


def _termination_notice(f: Facts) -> bool:
    name = f.content.template.lower()
    return f.channel == "letter" and any(w in name for w in ("cease_ack", "terminat", "remedy"))


@check("REGF-CEASE")
def cease(f: Facts) -> Finding | None:
    flag = f.ctx.flags.cease_requested
    if flag is None or flag.received_at > f.t or not _to_consumer_side(f):
        return None
    if flag.in_writing:
        if _termination_notice(f):
            return None
        return block("REGF-CEASE", "written cease request received; only a termination or "
                     "remedy notice may be sent")
    return None


def _third_party_recipient(f: Facts) -> bool:
    r = f.action.recipient
    if r in RECIPIENTS_AS_CONSUMER:
        return False
    if r == "parent":
        return not f.ctx.debtor.minor  # parent of a minor is the consumer (1006.6(a))
    return r in ("employer", "third_party_location")


@check("REGF-3P")
def third_party(f: Facts) -> Finding | None:
    if not _third_party_recipient(f) or not f.conveys_debt():
        return None
    return block("REGF-3P", f"content conveys the debt to a third party "
                 f"({f.action.recipient})", also=["HIPAA-MIN-NEC"])


@check("REGF-LOCATION")
def location(f: Facts) -> Finding | None:
    if f.action.recipient != "third_party_location":
        return None
    atty = f.ctx.flags.attorney_represented
    if atty is not None and atty.since <= f.t:
        return block("REGF-LOCATION", "no location contact after attorney representation")
    cp_id = f.action.contact_point
    earlier = any(e.direction == "outbound" and e.person == "third_party_location"
                  and (cp_id is None or e.contact_point == cp_id) for e in f.history)
    if earlier:
        return block("REGF-LOCATION", "this third party was already contacted for location")
    return None


LCM_TAGS = frozenset({"lcm_required_only", "lcm_plus_optional", "practice_name_neutral",
                      "patient_first_name"})


@check("REGF-LCM")
def lcm(f: Facts) -> Finding | None:
    extra = f.tags - LCM_TAGS
    _, collection_name = name_flags(f)
    if not extra and "lcm_required_only" in f.tags and not collection_name and \
            not f.content.includes_debt_collector_disclosure:
        return None
    why = []
    if extra:
        why.append("content beyond LCM fields: " + ", ".join(sorted(extra)))
    if "lcm_required_only" not in f.tags:
        why.append("required LCM fields missing")
    if collection_name:
        why.append("business name indicates debt collection")
    if f.content.includes_debt_collector_disclosure:
        why.append("mini-Miranda in a voicemail")
    return modify("REGF-LCM", "limit_to_limited_content_message", "; ".join(why))


@check("REGF-EMAIL-PROC")
def email_proc(f: Facts) -> Finding | None:
    cp_id = f.action.contact_point
    used = any(e.direction == "inbound" and e.channel == "email" and e.contact_point == cp_id
               for e in f.history)
    if used or f.has_consent(("email_use",), cp_id):
        return None
    return block("REGF-EMAIL-PROC", "no 1006.6(d)(4) basis (email_use) for this address")


@check("REGF-TEXT-PROC")
def text_proc(f: Facts) -> Finding | None:
    cp_id = f.action.contact_point
    uses = [e.at for e in f.history if e.direction == "inbound" and e.channel == "sms"
            and e.contact_point == cp_id]
    consents = [c.granted_at for c in f.ctx.consents if c.contact_point == cp_id
                and c.given_to == "debt_collector" and c.granted_at <= f.t]
    basis = max([*uses, *consents], default=None)
    if basis is None:
        return block("REGF-TEXT-PROC", "the consumer neither texted from this number nor "
                     "consented directly to the collector")
    rnd = f.cp.rnd_check if f.cp is not None else None
    if rnd is None or rnd.result != "no" or \
            rnd.date < tz.local_date(basis, f.primary_zone):
        return block("REGF-TEXT-PROC", "no RND result 'no' dated after the last consent/use",
                     also=["TCPA-RND"])
    return None


@check("REGF-EOPTOUT")
def e_optout(f: Facts) -> Finding | None:
    if f.content.includes_opt_out:
        return None
    return modify("REGF-EOPTOUT", "append_opt_out",
                  "electronic message lacks an opt-out (SMS: 'Reply STOP'; email: link)")


@check("REGF-MEDIUM-OPTOUT")
def medium_optout(f: Facts) -> Finding | None:
    medium = medium_of(f.channel)
    optouts = f.medium_optouts(f.action.contact_point, medium)
    if not optouts:
        return None
    last = max(optouts, key=lambda r: r.at)
    if f.consumer_initiated_reply(medium, last.at, None):
        return None  # one response after the consumer re-initiates (1006.14(h)(2)(ii))
    from carecollect.compliance.rules.tcpa import revocation_confirmation_ok

    if medium == "sms" and revocation_confirmation_ok(f, last.at):
        return None
    also = ["PLAT-HONOR-IMMEDIATELY"]
    if last.source in ("nlu", "fallback"):
        also.append("PLAT-REVOKE-NLU")
    return block("REGF-MEDIUM-OPTOUT", f"the consumer opted out of {medium} for this "
                 "address", also=also)


def placed_call(e_channel: str, direction: str, outcome: str | None) -> bool:
    # PLAT-ATTEMPT-VS-CONVERSATION: not_connected is not a placed call (1006.14(b)(3)(ii)).
    return direction == "outbound" and e_channel in CALL_CHANNELS and outcome != "not_connected"


def consent_windows(f: Facts, zone: str) -> list[tuple[dt.datetime, dt.date]]:
    """Direct prior consent to extra calls: (granted_at, last local day) (1006.14(b)(3)(i))."""
    # Only consent given directly to the debt collector qualifies; for a first-party
    # creditor under the strict profile, consent given to the creditor itself is direct.
    wanted = "debt_collector" if f.ctx.creditor.type == "third_party" else None
    return [(c.granted_at, tz.local_date(c.granted_at, zone) + dt.timedelta(days=6))
            for c in f.ctx.consents
            if c.kind == "direct_prior_consent_extra_calls" and c.granted_at <= f.t
            and (wanted is None or c.given_to == wanted)]


def _excluded(at: dt.datetime, windows: list[tuple[dt.datetime, dt.date]], zone: str) -> bool:
    return any(start <= at and tz.local_date(at, zone) <= last for start, last in windows)


def seven_in_seven(f: Facts, rule_id: str) -> Finding | None:
    """REGF-CALL-7IN7 core, shared with STATE-TX-FDCA (proxy) and the batch path."""
    person = f.action.recipient
    worst: Finding | None = None
    for debt_id in f.debt_ids:
        # The zone only decides which calls the consent exclusion removes, so the placed
        # calls are listed once per debt; fewer than 7 cannot reach the cap in any zone.
        placed = [e.at for e in f.history
                  if placed_call(e.channel, e.direction, e.outcome) and e.person == person
                  and f.about_debt(e, debt_id)]
        if len(placed) < 7:
            continue
        for zone in f.zones:
            windows = consent_windows(f, zone)
            if _excluded(f.t, windows, zone):
                continue
            calls = [at for at in placed if not _excluded(at, windows, zone)] if windows \
                else placed
            if len(calls) < 7:
                continue
            hit = _freq_in_zone(f, calls, 7, 7, zone)
            if hit is None:
                continue
            count, earliest = hit
            if worst is None or (worst.earliest is not None and earliest > worst.earliest):
                worst = block(rule_id, f"{count} placed calls about debt {debt_id} on the 7 "
                              f"days ending {tz.local_date(f.t, zone)} ({zone}); this would "
                              f"be call {count + 1}", earliest,
                              ["PLAT-DAY-COUNT", "PLAT-ATTEMPT-VS-CONVERSATION"])
    return worst


def _freq_in_zone(f: Facts, events: list[dt.datetime], cap_prior: int, span: int, zone: str
                  ) -> tuple[int, dt.datetime] | None:
    day = tz.local_date(f.t, zone)
    first = day - dt.timedelta(days=span - 1)
    dates = sorted((tz.local_date(a, zone) for a in events), reverse=True)
    count = sum(1 for d in dates if first <= d <= day)
    if count < cap_prior:
        return None
    release = dates[cap_prior - 1] + dt.timedelta(days=span)
    return count, tz.day_start(release, zone).astimezone(dt.UTC)


@check("REGF-CALL-7IN7")
def call_7in7(f: Facts) -> Finding | None:
    return seven_in_seven(f, "REGF-CALL-7IN7")


@check("REGF-CALL-7AFTERCONV")
def call_after_conversation(f: Facts) -> Finding | None:
    person = f.action.recipient
    worst: Finding | None = None
    for debt_id in f.debt_ids:
        convs = [e.at for e in f.history if e.channel == "call" and e.outcome == CONVERSATION
                 and e.person == person and f.about_debt(e, debt_id)]
        if not convs:
            continue
        for zone in f.zones:
            if _excluded(f.t, consent_windows(f, zone), zone):
                continue
            last = max(tz.local_date(a, zone) for a in convs)
            day = tz.local_date(f.t, zone)
            if day > last + dt.timedelta(days=6):
                continue
            earliest = tz.day_start(last + dt.timedelta(days=7), zone).astimezone(dt.UTC)
            if worst is None or (worst.earliest is not None and earliest > worst.earliest):
                worst = block("REGF-CALL-7AFTERCONV",
                              f"telephone conversation about debt {debt_id} on {last} "
                              f"({zone}); calls allowed from day 8", earliest,
                              ["PLAT-DAY-COUNT"])
    return worst


@check("REGF-CALL-EXCLUSIONS")
def call_exclusions(f: Facts) -> Finding | None:
    # Never a violation by itself: the exclusions are applied inside REGF-CALL-7IN7 and
    # REGF-CALL-7AFTERCONV, and cited there through PLAT-ATTEMPT-VS-CONVERSATION.
    return None


@check("REGF-IDENTITY")
def identity(f: Facts) -> Finding | None:
    if f.ctx.creditor.display_name.strip():
        return None
    return block("REGF-IDENTITY", "the caller's business name is missing")


@check("REGF-DISCLOSE")
def disclose(f: Facts) -> Finding | None:
    if f.content.includes_debt_collector_disclosure or f.action.recipient == "attorney":
        return None
    return modify("REGF-DISCLOSE", "add_debt_collector_disclosure",
                  "debt collector disclosure (1006.18(e)) missing")


@check("REGF-ENVELOPE")
def envelope(f: Facts) -> Finding | None:
    sensitive, collection = name_flags(f)
    if not (sensitive or collection):
        return None
    return modify("REGF-ENVELOPE", "use_neutral_display_name",
                  "envelope name indicates debt collection or a sensitive specialty",
                  also=["PLAT-NEUTRAL-NAME"])


@check("REGF-SOCIAL")
def social(f: Facts) -> Finding | None:
    return block("REGF-SOCIAL", "no collection communication on public social media")


@check("REGF-UNAUTH-AMOUNT")
def unauthorized_amount(f: Facts) -> Finding | None:
    nsa = f.ctx.debt.nsa
    if nsa is None or nsa.status != "prohibited_balance_bill":
        return None
    return block("REGF-UNAUTH-AMOUNT", "amount is a prohibited balance bill (not permitted "
                 "by law)", also=["MED-NSA-BALANCE"])


def _is_validation_notice(f: Facts) -> bool:
    return "validation" in f.content.template.lower()


@check("REGF-VAL-TIMING")
def validation_timing(f: Facts) -> Finding | None:
    v = f.ctx.flags.validation
    if v is None or (v.notice_provided_at is not None and v.notice_provided_at <= f.t):
        return None
    if f.t <= v.initial_communication_at + dt.timedelta(days=5) or _is_validation_notice(f):
        return None
    if f.channel in ("credit_report_furnish", "eca") or f.action.recipient == "attorney":
        return block("REGF-VAL-TIMING", "validation notice overdue (initial communication + "
                     "5 days)")
    return block("REGF-VAL-TIMING", "validation notice overdue; only the notice may be sent")


@check("REGF-VAL-CONTENT")
def validation_content(f: Facts) -> Finding | None:
    if not _is_validation_notice(f):
        return None
    if "debt_collection_statement" in f.tags and f.content.includes_debt_collector_disclosure:
        return None
    return modify("REGF-VAL-CONTENT", "use_model_form_b1",
                  "validation notice lacks 1006.34(c) items (use Model Form B-1)")


def validation_end(f: Facts) -> dt.date | None:
    v = f.ctx.flags.validation
    if v is None or v.notice_provided_at is None:
        return None
    return validation_period_end(tz.local_date(v.notice_provided_at, f.primary_zone))


def in_validation_period(f: Facts) -> bool:
    v = f.ctx.flags.validation
    if v is None:
        return False
    end = validation_end(f)
    if end is None:
        return True  # notice not yet provided: treat as within the period (fail closed)
    return tz.local_date(f.t, f.primary_zone) <= end


@check("REGF-VAL-PERIOD")
def validation_period(f: Facts) -> Finding | None:
    # A computation, not a prohibition: REGF-OVERSHADOW and REGF-DISPUTE-CEASE rely on it
    # and cite it.
    return None


@check("REGF-OVERSHADOW")
def overshadow(f: Facts) -> Finding | None:
    risky = f.tags & {"threat_of_suit", "pay_within_deadline"}
    if not risky or not in_validation_period(f):
        return None
    end = validation_end(f)
    earliest = None
    if end is not None:
        earliest = tz.day_start(end + DAY, f.primary_zone).astimezone(dt.UTC)
    return block("REGF-OVERSHADOW", f"{', '.join(sorted(risky))} during the validation period"
                 + (f" (ends {end})" if end else ""), earliest, ["REGF-VAL-PERIOD"])


@check("REGF-DISPUTE-CEASE")
def dispute_cease(f: Facts) -> Finding | None:
    d = f.ctx.flags.disputed
    if d is None or d.received_at > f.t:
        return None
    verified = d.verification_sent_at is not None and d.verification_sent_at <= f.t
    end = validation_end(f)
    received = tz.local_date(d.received_at, f.primary_zone)
    in_period = f.ctx.flags.validation is None or end is None or received <= end
    if d.in_writing and in_period and not verified:
        if f.channel == "letter" and "verification" in f.content.template.lower():
            return None
        if f.channel in ("call", "voicemail", "sms", "email", "credit_report_furnish", "eca"):
            return block("REGF-DISPUTE-CEASE", "written dispute within the validation period; "
                         "collection paused until verification is sent",
                         also=["REGF-VAL-PERIOD"])
        return None
    if f.channel == "credit_report_furnish":
        return modify("REGF-DISPUTE-CEASE", "report_as_disputed",
                      "disputed debt must be furnished as disputed (1692e(8))")
    return None


@check("REGF-TBD")
def time_barred(f: Facts) -> Finding | None:
    if not f.ctx.debt.sol_expired:
        return None
    if "threat_of_suit" in f.tags or (f.channel == "eca" and f.action.recipient == "court"):
        return block("REGF-TBD", "suit or threat of suit on a time-barred debt")
    return None


@check("REGF-PASSIVE-CR")
def passive_credit_reporting(f: Facts) -> Finding | None:
    debts = set(f.debt_ids)
    for e in f.history:
        if e.channel == "call" and e.outcome == CONVERSATION and e.person == "debtor" and \
                (not e.debt_ids or debts & set(e.debt_ids)):
            return None
    sent = [e.at for e in f.history if e.direction == "outbound" and e.person == "debtor"
            and e.channel in ("letter", "email", "sms") and e.outcome != "undeliverable"
            and (not e.debt_ids or debts & set(e.debt_ids))]
    today = tz.local_date(f.t, f.primary_zone)
    ready = [tz.local_date(a, f.primary_zone) + dt.timedelta(days=14) for a in sent]
    if any(r <= today for r in ready):
        return None
    if ready:
        earliest = tz.day_start(min(ready), f.primary_zone).astimezone(dt.UTC)
        return block("REGF-PASSIVE-CR", "a message was sent less than 14 days ago; wait for "
                     "undeliverable notices", earliest)
    return block("REGF-PASSIVE-CR", "no conversation with the consumer and no delivered "
                 "letter or electronic message about the debt")


@check("REGF-DECEASED")
def deceased(f: Facts) -> Finding | None:
    if not f.ctx.debtor.deceased:
        return None
    r = f.action.recipient
    if r in ("personal_representative", "attorney"):
        return None
    if r in ("spouse", "parent") and f.conveys_debt():
        return block("REGF-DECEASED", "do not imply family members are liable for a "
                     "deceased consumer's debt")
    if r == "debtor":
        return block("REGF-DECEASED", "consumer is deceased: communicate with the personal "
                     "representative")
    return None
