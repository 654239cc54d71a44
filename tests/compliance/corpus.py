"""The scenario corpus: hand-written expectations, one or more cases per rule.

`python -m tests.compliance.corpus` rewrites scenarios.jsonl from this list. Expectations
are written from RULES.md, never copied from engine output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.compliance.builders import at, base_input, call, email, merge, sms

Case = tuple[str, list[str], str, dict[str, Any], str, list[str], str | None, str | None]
CASES: list[Case] = []
NY = "America/New_York"


def case(cid: str, rule_ids: list[str], description: str, patch: dict[str, Any],
         expected: str, reasons: list[str] | None = None, modification: str | None = None,
         next_allowed: str | None = None) -> None:
    CASES.append((cid, rule_ids, description, patch, expected, reasons or [], modification,
                  next_allowed))


def p(*patches: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for patch in patches:
        out = merge(out, patch)
    return out


def hist(*events: dict[str, Any]) -> dict[str, Any]:
    return {"contact_history": list(events)}


def content(**kw: Any) -> dict[str, Any]:
    return {"proposed_action": {"content": kw}}


THIRD_PARTY = {"creditor": {"type": "third_party", "entity_kind": "collection_agency",
                            "display_name": "Evergreen Account Services",
                            "hipaa_role": "business_associate", "baa_in_place": True}}
DISCLOSED = content(includes_debt_collector_disclosure=True)
LEGAL = {"policy_profile": "legal_minimum"}
PA = {"debtor": {"state": "PA", "zip": "15213"}, "creditor": {"provider_license_state": "PA"}}
NO_CONSENT = {"consents": []}
VOICEMAIL = {"proposed_action": {"channel": "voicemail", "dialer": "manual", "content": {
    "template": "lcm", "contains": ["lcm_required_only", "practice_name_neutral"]}}}
LETTER = {"proposed_action": {"channel": "letter", "contact_point": "cp_mail", "dialer": None,
                              "content": {"template": "statement_letter",
                                          "contains": ["balance_amount", "date_of_service",
                                                       "service_description"]}}}
FURNISH = {"proposed_action": {"channel": "credit_report_furnish", "contact_point": None,
                               "dialer": None, "recipient": "consumer_reporting_agency",
                               "content": {"template": "metro2", "contains": []}}}
ECA = {"proposed_action": {"channel": "eca", "contact_point": None, "dialer": None,
                           "recipient": "court",
                           "content": {"template": "lawsuit", "contains": []}}}
PRERECORDED_HOME = {"proposed_action": {"contact_point": "cp_home", "dialer": "prerecorded",
                                        "content": {"includes_opt_out": True,
                                                    "contains": ["practice_name_neutral"]}}}


def seven_calls(last: str = "2026-03-10T09:00:00-04:00", outcome: str = "no_answer"
                ) -> list[dict[str, Any]]:
    days = ["2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"]
    return [call(f"{d}T12:00:00-05:00" if d < "2026-03-08" else f"{d}T12:00:00-04:00",
                 outcome) for d in days] + [call(last, outcome)]


# ---- time of day, zones, DST ------------------------------------------------------------
case("C001", ["REGF-TIME-8TO9", "PLAT-TIME-BOUNDARY"], "08:00:00 local is inside [08:00, 21:00)",
     at("2026-03-10T08:00:00-04:00"), "allow")
case("C002", ["REGF-TIME-8TO9", "PLAT-TIME-BOUNDARY"], "07:59:59 local is before 08:00",
     at("2026-03-10T07:59:59-04:00"), "block", ["REGF-TIME-8TO9"], None,
     "2026-03-10T08:00:00-04:00")
case("C003", ["REGF-TIME-8TO9", "PLAT-TIME-BOUNDARY"], "20:59:59 is allowed",
     at("2026-03-10T20:59:59-04:00"), "allow")
case("C004", ["REGF-TIME-8TO9", "PLAT-TIME-BOUNDARY"], "21:00:00 is blocked (half-open)",
     at("2026-03-10T21:00:00-04:00"), "block", ["REGF-TIME-8TO9"], None,
     "2026-03-11T08:00:00-04:00")
case("C005", ["REGF-TIME-8TO9", "PLAT-TZ-RESOLVE"], "DST start day: 11:30 UTC is 07:30 EDT "
     "(a fixed -05:00 offset would say 06:30/ wrong window)",
     at("2026-03-08T11:30:00+00:00"), "block", ["REGF-TIME-8TO9"], None,
     "2026-03-08T08:00:00-04:00")
case("C006", ["REGF-TIME-8TO9", "PLAT-TZ-RESOLVE"], "DST start day: 12:00 UTC is 08:00 EDT",
     at("2026-03-08T12:00:00+00:00"), "allow")
case("C007", ["REGF-TIME-8TO9", "PLAT-TZ-RESOLVE"], "DST end day: 12:59:59 UTC is 07:59:59 EST",
     at("2026-11-01T12:59:59+00:00"), "block", ["REGF-TIME-8TO9"], None,
     "2026-11-01T08:00:00-05:00")
case("C008", ["REGF-TIME-MULTITZ", "PLAT-TZ-RESOLVE"], "area code in Pacific time: 10:30 EDT "
     "is 07:30 PDT", p(at("2026-03-10T10:30:00-04:00"), {"contact_points": [
         {**base_input()["contact_points"][0], "value": "+12135550101",
          "area_code_tz": "America/Los_Angeles"}, *base_input()["contact_points"][1:]]}),
     "block", ["REGF-TIME-8TO9", "REGF-TIME-MULTITZ"], None, "2026-03-10T11:00:00-04:00")
case("C009", ["REGF-TIME-MULTITZ", "PLAT-TZ-RESOLVE"], "same call at 11:00 EDT = 08:00 PDT",
     p(at("2026-03-10T11:00:00-04:00"), {"contact_points": [
         {**base_input()["contact_points"][0], "value": "+12135550101",
          "area_code_tz": "America/Los_Angeles"}, *base_input()["contact_points"][1:]]}),
     "allow")
case("C010", ["REGF-TIME-MULTITZ", "PLAT-TZ-RESOLVE"], "stated location Arizona (no DST): "
     "10:30 EDT is 07:30 MST", p(at("2026-03-10T10:30:00-04:00"),
                                  {"debtor": {"other_known_tz": ["America/Phoenix"]}}),
     "block", ["REGF-TIME-MULTITZ"], None, "2026-03-10T11:00:00-04:00")
case("C011", ["PLAT-TIME-CHANNELS", "REGF-TIME-8TO9"], "email is time-restricted at send",
     p(email(), at("2026-03-10T21:30:00-04:00")), "block", ["REGF-TIME-8TO9"], None,
     "2026-03-11T08:00:00-04:00")
case("C012", ["PLAT-TIME-CHANNELS"], "letters are not time-of-day restricted",
     p(LETTER, at("2026-03-10T23:00:00-04:00")), "allow")
case("C013", ["REGF-TIME-8TO9"], "one reply to a consumer-initiated late text",
     p(sms(), at("2026-03-10T21:20:00-04:00"),
       hist(call("2026-03-10T21:10:00-04:00", None, direction="inbound", channel="sms",
                 text="can you send me the link"))), "allow")
case("C014", ["REGF-TIME-8TO9"], "a second late reply is not allowed",
     p(sms(), at("2026-03-10T21:30:00-04:00"),
       hist(call("2026-03-10T21:10:00-04:00", None, direction="inbound", channel="sms",
                 text="can you send me the link"),
            call("2026-03-10T21:20:00-04:00", "delivered", channel="sms"))),
     "block", ["REGF-TIME-8TO9"], None, "2026-03-11T08:00:00-04:00")
case("C015", ["REGF-TIME-8TO9"], "consumer's direct prior consent to a later time",
     p(at("2026-03-10T21:30:00-04:00"), {"consents": [
         *base_input()["consents"],
         {"contact_point": "cp_cell", "kind": "inconvenient_time_ok",
          "granted_at": "2026-03-09T12:00:00-04:00", "given_to": "creditor",
          "method": "recorded_call"}]}), "allow")
case("C016", ["REGF-TIME-DESIGNATED"], "consumer said not before 10:00",
     p(at("2026-03-10T09:30:00-04:00"), {"debtor": {"designated_inconvenient": [
         {"kind": "time", "value": "before 10:00", "at": "2026-03-01T12:00:00-05:00"}]}}),
     "block", ["REGF-TIME-DESIGNATED"], None, "2026-03-10T10:00:00-04:00")
case("C017", ["REGF-TIME-DESIGNATED"], "10:00 is after the designated time",
     p(at("2026-03-10T10:00:00-04:00"), {"debtor": {"designated_inconvenient": [
         {"kind": "time", "value": "before 10:00", "at": "2026-03-01T12:00:00-05:00"}]}}),
     "allow")
case("C018", ["REGF-TIME-DESIGNATED"], "consumer designated Sundays",
     p(at("2026-03-15T11:00:00-04:00"), {"debtor": {"designated_inconvenient": [
         {"kind": "day", "value": "sunday", "at": "2026-03-01T12:00:00-05:00"}]}}),
     "block", ["REGF-TIME-DESIGNATED"], None, "2026-03-16T08:00:00-04:00")

# ---- call frequency ----------------------------------------------------------------------
case("C020", ["REGF-CALL-7IN7", "PLAT-DAY-COUNT"], "8th placed call in 7 days",
     hist(*seven_calls()), "block", ["REGF-CALL-7IN7"], None, "2026-03-11T08:00:00-04:00")
case("C021", ["REGF-CALL-7IN7", "PLAT-DAY-COUNT"], "7th placed call in 7 days is allowed",
     hist(*seven_calls()[1:]), "allow")
case("C022", ["REGF-CALL-7IN7", "PLAT-ATTEMPT-VS-CONVERSATION", "REGF-CALL-EXCLUSIONS"],
     "a not_connected call is not a placed call",
     hist(*seven_calls()[:-1], call("2026-03-10T09:00:00-04:00", "not_connected")), "allow")
case("C023", ["REGF-CALL-7IN7"], "calls on day D-7 fall outside the window",
     hist(*[call(f"2026-03-03T{h}:00:00-05:00") for h in ("09", "10", "11", "12", "13", "14",
                                                          "15")]), "allow")
case("C024", ["REGF-CALL-7AFTERCONV"], "conversation on day 1 (Mar 3): Mar 9 is day 7",
     p(at("2026-03-09T10:00:00-04:00"), hist(call("2026-03-03T10:00:00-05:00",
                                                  "conversation_rpc"))),
     "block", ["REGF-CALL-7AFTERCONV"], None, "2026-03-10T08:00:00-04:00")
case("C025", ["REGF-CALL-7AFTERCONV"], "day 8 after the conversation is allowed",
     hist(call("2026-03-03T10:00:00-05:00", "conversation_rpc")), "allow")
case("C026", ["REGF-CALL-7AFTERCONV", "PLAT-ATTEMPT-VS-CONVERSATION"],
     "an inbound conversation starts the period too",
     hist(call("2026-03-06T10:00:00-05:00", "conversation_rpc", direction="inbound")),
     "block", ["REGF-CALL-7AFTERCONV"], None, "2026-03-13T08:00:00-04:00")
case("C027", ["REGF-CALL-7AFTERCONV"], "a conversation about another debt does not count",
     hist(call("2026-03-09T10:00:00-04:00", "conversation_rpc", debt_ids=("D2",))), "allow")
case("C028", ["REGF-CALL-EXCLUSIONS", "REGF-CALL-7AFTERCONV"],
     "direct consent to extra calls (creditor is the sender) lifts the conversation block",
     p(hist(call("2026-03-09T10:00:00-04:00", "conversation_rpc")), {"consents": [
         *base_input()["consents"],
         {"contact_point": None, "kind": "direct_prior_consent_extra_calls",
          "granted_at": "2026-03-09T10:05:00-04:00", "given_to": "creditor",
          "method": "recorded_call"}]}), "allow")
case("C029", ["REGF-CALL-EXCLUSIONS", "REGF-CALL-7AFTERCONV"],
     "third-party collector: consent given only to the creditor does not qualify",
     p(THIRD_PARTY, DISCLOSED, hist(call("2026-03-09T10:00:00-04:00", "conversation_rpc")),
       {"consents": [*base_input()["consents"],
                     {"contact_point": None, "kind": "direct_prior_consent_extra_calls",
                      "granted_at": "2026-03-09T10:05:00-04:00", "given_to": "creditor",
                      "method": "recorded_call"}]}),
     "block", ["REGF-CALL-7AFTERCONV"], None, "2026-03-16T08:00:00-04:00")
case("C030", ["REGF-CALL-7IN7", "PLAT-PROFILE"], "legal_minimum: Reg F does not bind a NY "
     "first-party creditor", p(LEGAL, hist(*seven_calls())), "allow")
case("C031", ["STATE-TX-FDCA", "PLAT-PROFILE"], "Texas: 7-in-7 proxy binds creditors",
     p(LEGAL, {"debtor": {"state": "TX", "zip": "75201", "mailing_tz": "America/Chicago"}},
       {"contact_points": [{**base_input()["contact_points"][0],
                            "area_code_tz": "America/Chicago", "value": "+12145550101"}]},
       hist(*seven_calls())), "block", ["STATE-TX-FDCA"], None,
     # legal_minimum: no time-of-day rule binds a Texas creditor, so local midnight
     "2026-03-11T00:00:00-05:00")

# ---- Massachusetts / NYC / Washington ----------------------------------------------------
MA = {"debtor": {"state": "MA", "zip": "02108"}}
case("C040", ["STATE-MA-2IN7"], "MA: voicemail reached + delivered SMS = 2; a 3rd is blocked",
     p(MA, hist(call("2026-03-06T12:00:00-05:00", "voicemail_reached_no_message"),
                call("2026-03-08T12:00:00-04:00", "delivered", channel="sms"))),
     "block", ["STATE-MA-2IN7"], None, "2026-03-13T08:00:00-04:00")
case("C041", ["STATE-MA-2IN7", "PLAT-ATTEMPT-VS-CONVERSATION"],
     "MA: no_answer and not_connected attempts do not count",
     p(MA, hist(call("2026-03-06T12:00:00-05:00", "no_answer"),
                call("2026-03-08T12:00:00-04:00", "not_connected"))), "allow")
case("C042", ["STATE-MA-2IN7", "PLAT-PROFILE"], "MA binds creditors under legal_minimum",
     p(MA, LEGAL, hist(call("2026-03-06T12:00:00-05:00", "voicemail_lcm"),
                       call("2026-03-09T12:00:00-04:00", "voicemail_lcm"))),
     "block", ["STATE-MA-2IN7"], None, "2026-03-13T00:00:00-04:00")
case("C043", ["STATE-MA-2IN7"], "MA: contacts 7 days ago no longer count",
     p(MA, hist(call("2026-03-03T12:00:00-05:00", "voicemail_lcm"),
                call("2026-03-09T12:00:00-04:00", "voicemail_lcm"))), "allow")
NYC = {"debtor": {"zip": "10001", "city_is_nyc": True}}
case("C045", ["STATE-NYC-3IN7"], "NYC: 3 communications in 7 days, a 4th is blocked",
     p(NYC, email(), hist(call("2026-03-08T12:00:00-04:00", "delivered", channel="sms"),
                          call("2026-03-09T12:00:00-04:00", "delivered", channel="email",
                               cp="cp_email"),
                          call("2026-03-09T15:00:00-04:00", "no_answer"))),
     "block", ["STATE-NYC-3IN7"], None, "2026-03-15T08:00:00-04:00")
case("C046", ["STATE-NYC-3IN7"], "NYC: 3rd communication is allowed",
     p(NYC, email(), hist(call("2026-03-08T12:00:00-04:00", "delivered", channel="sms"),
                          call("2026-03-09T15:00:00-04:00", "no_answer"))), "allow")
case("C047", ["STATE-NYC-ECONSENT"], "NYC: email without consent to email",
     p(NYC, email(), {"consents": [base_input()["consents"][0]]}), "block",
     ["STATE-NYC-ECONSENT"])
WA = p(THIRD_PARTY, DISCLOSED, {"debtor": {"state": "WA", "zip": "98101",
                                           "mailing_tz": "America/Los_Angeles"},
                                "contact_points": [{**base_input()["contact_points"][0],
                                                    "area_code_tz": "America/Los_Angeles",
                                                    "value": "+12065550101"}]},
       at("2026-03-10T10:00:00-07:00"))
case("C048", ["STATE-WA-3PERWEEK"], "WA agency: 3 communications this week",
     p(WA, hist(call("2026-03-05T12:00:00-08:00", "delivered", channel="letter", cp="cp_mail"),
                call("2026-03-06T12:00:00-08:00", "delivered", channel="letter", cp="cp_mail"),
                call("2026-03-09T12:00:00-07:00", "conversation_third_party"))),
     "block", ["STATE-WA-3PERWEEK"], None, "2026-03-12T08:00:00-07:00")
case("C049", ["STATE-WA-3PERWEEK"], "WA agency: 2 communications, a 3rd is allowed",
     p(WA, hist(call("2026-03-05T12:00:00-08:00", "delivered", channel="letter", cp="cp_mail"),
                call("2026-03-09T12:00:00-07:00", "conversation_third_party"))), "allow")

# ---- state time windows --------------------------------------------------------------------
OK = {"debtor": {"state": "OK", "zip": "74103", "mailing_tz": "America/Chicago"},
      "contact_points": [base_input()["contact_points"][0],
                         {**base_input()["contact_points"][1], "value": "+19185550102",
                          "area_code_tz": "America/Chicago"}]}
case("C050", ["STATE-OK-ADAD"], "Oklahoma: prerecorded call at 08:30 (ADAD window starts 09:00)",
     p(OK, PRERECORDED_HOME, at("2026-03-10T08:30:00-05:00")), "block", ["STATE-OK-ADAD"],
     None, "2026-03-10T09:00:00-05:00")
case("C051", ["STATE-OK-ADAD"], "Oklahoma: prerecorded call at 09:00 is allowed",
     p(OK, PRERECORDED_HOME, at("2026-03-10T09:00:00-05:00")), "allow")
case("C052", ["STATE-OK-ADAD"], "Oklahoma: live manual call at 08:30 is unaffected",
     p(OK, {"proposed_action": {"contact_point": "cp_home"}}, at("2026-03-10T08:30:00-05:00")),
     "allow")
FL = {"debtor": {"state": "FL", "zip": "33101"}}
case("C053", ["STATE-FL-FCCPA-HOURS"], "Florida binds creditors: call at 21:15",
     p(FL, LEGAL, at("2026-03-10T21:15:00-04:00")), "block", ["STATE-FL-FCCPA-HOURS"], None,
     "2026-03-11T08:00:00-04:00")
case("C054", ["STATE-FL-FCCPA-HOURS", "PLAT-TIME-CHANNELS"], "Florida: email excluded since "
     "2025-05-16 (legal_minimum, first party)", p(FL, LEGAL, email(),
                                                  at("2026-03-10T21:15:00-04:00")), "allow")
case("C055", ["STATE-FL-FCCPA-HOURS"], "Florida: email before 2025-05-16 was covered",
     p(FL, LEGAL, email(), at("2025-05-01T21:15:00-04:00")), "block",
     ["STATE-FL-FCCPA-HOURS"], None, "2025-05-02T08:00:00-04:00")
CA = {"debtor": {"state": "CA", "zip": "94103", "mailing_tz": "America/Los_Angeles"},
      "contact_points": [{**base_input()["contact_points"][0], "value": "+14155550101",
                          "area_code_tz": "America/Los_Angeles"}]}
case("C056", ["STATE-CA-ROSENTHAL", "REGF-TIME-8TO9"], "California creditor under "
     "legal_minimum: 1692c(a)(1) time window via Rosenthal",
     p(CA, LEGAL, at("2026-03-10T21:30:00-07:00")), "block",
     ["REGF-TIME-8TO9", "STATE-CA-ROSENTHAL"], None, "2026-03-11T08:00:00-07:00")
case("C057", ["PLAT-PROFILE"], "NY creditor under legal_minimum: no federal time rule binds",
     p(LEGAL, at("2026-03-10T21:30:00-04:00")), "allow")
case("C058", ["TCPA-SOLICIT-HOURS", "STATE-FL-TELEMKT"], "Florida marketing text at 20:30",
     p(FL, sms(marketing=True, contains=["marketing_offer", "practice_name_neutral"]),
       at("2026-03-10T20:30:00-04:00"), {"consents": [
           {"contact_point": "cp_cell", "kind": "tcpa_pewc",
            "granted_at": "2026-03-01T09:00:00-05:00", "given_to": "creditor",
            "method": "esign_form"}]}), "block", ["STATE-FL-TELEMKT"], None,
     "2026-03-11T08:00:00-04:00")
case("C059", ["STATE-FL-TELEMKT"], "Florida collection text at 20:30 is not a solicitation",
     p(FL, sms(), at("2026-03-10T20:30:00-04:00")), "allow")
case("C060", ["STATE-OK-TSA"], "Oklahoma marketing text at 20:30",
     p(OK, sms(marketing=True, contains=["marketing_offer"]), at("2026-03-10T20:30:00-05:00"),
       {"consents": [{"contact_point": "cp_cell", "kind": "tcpa_pewc",
                      "granted_at": "2026-03-01T09:00:00-06:00", "given_to": "creditor",
                      "method": "esign_form"}]}), "block", ["STATE-OK-TSA"], None,
     "2026-03-11T08:00:00-05:00")
case("C061", ["STATE-MD-SPAM"], "Maryland marketing text at 20:30",
     p({"debtor": {"state": "MD", "zip": "21201"}},
       sms(marketing=True, contains=["marketing_offer"]), at("2026-03-10T20:30:00-04:00"),
       {"consents": [{"contact_point": "cp_cell", "kind": "tcpa_pewc",
                      "granted_at": "2026-03-01T09:00:00-05:00", "given_to": "creditor",
                      "method": "esign_form"}]}), "block", ["STATE-MD-SPAM"], None,
     "2026-03-11T08:00:00-04:00")
case("C062", ["TCPA-SOLICIT-HOURS"], "marketing text at 21:10 (federal solicitation hours)",
     p(sms(marketing=True, contains=["marketing_offer"]), at("2026-03-10T21:10:00-04:00"),
       LEGAL, {"consents": [{"contact_point": "cp_cell", "kind": "tcpa_pewc",
                             "granted_at": "2026-03-01T09:00:00-05:00",
                             "given_to": "creditor", "method": "esign_form"}]}),
     "block", ["TCPA-SOLICIT-HOURS"], None, "2026-03-11T08:00:00-04:00")

# ---- TCPA consent, revocation, RND -------------------------------------------------------
case("C070", ["TCPA-CONSENT-WIRELESS", "TCPA-HC-EXEMPT-NA"],
     "autodialed call to a wireless number without consent", p(NO_CONSENT, {
         "proposed_action": {"dialer": "autodialer"}}), "block", ["TCPA-CONSENT-WIRELESS"])
case("C071", ["TCPA-CONSENT-WIRELESS"], "manual live call needs no TCPA consent",
     NO_CONSENT, "allow")
case("C072", ["TCPA-CONSENT-WIRELESS"], "text with live consent", sms(), "allow")
case("C073", ["TCPA-REVOKE-ANYMEANS", "TCPA-CONSENT-WIRELESS", "REGF-MEDIUM-OPTOUT"],
     "consumer replied STOP: no more texts",
     p(sms(), hist(call("2026-03-09T12:00:00-04:00", None, direction="inbound", channel="sms",
                        text="STOP"))), "block",
     ["TCPA-CONSENT-WIRELESS", "TCPA-REVOKE-ANYMEANS", "REGF-MEDIUM-OPTOUT"])
case("C074", ["TCPA-RECONSENT"], "START after STOP re-authorizes texts",
     p(sms(), hist(call("2026-03-05T12:00:00-05:00", None, direction="inbound", channel="sms",
                        text="stop"),
                   call("2026-03-09T12:00:00-04:00", None, direction="inbound", channel="sms",
                        text="START"))), "allow")
case("C075", ["TCPA-RECONSENT"], "revocation after the latest consent wins",
     p(sms(), {"revocations": [{"contact_point": "cp_cell", "channel": "sms",
                               "received_at": "2026-03-05T12:00:00-05:00",
                               "method": "call_center", "text": None}]}),
     "block", ["TCPA-CONSENT-WIRELESS", "TCPA-RECONSENT"])
case("C076", ["TCPA-RECONSENT"], "a new signed consent after the revocation wins",
     p(sms(), {"revocations": [{"contact_point": "cp_cell", "channel": "sms",
                               "received_at": "2026-03-05T12:00:00-05:00",
                               "method": "call_center", "text": None}],
               "consents": [*base_input()["consents"],
                            {"contact_point": "cp_cell", "kind": "tcpa_pec",
                             "granted_at": "2026-03-06T12:00:00-05:00",
                             "given_to": "creditor", "method": "portal"}]}), "allow")
REVOKED_TEXT = hist(call("2026-03-10T09:58:00-04:00", None, direction="inbound",
                         channel="sms", text="Stop"))
case("C077", ["TCPA-REVOKE-CONFIRM"], "one confirmation text within 5 minutes",
     p(sms(template="optout_confirmation", contains=["practice_name_neutral"]),
       REVOKED_TEXT), "allow")
case("C078", ["TCPA-REVOKE-CONFIRM"], "confirmation later than 5 minutes",
     p(sms(template="optout_confirmation", contains=["practice_name_neutral"]), REVOKED_TEXT,
       at("2026-03-10T10:10:00-04:00")), "block", ["TCPA-REVOKE-CONFIRM"])
case("C079", ["TCPA-REVOKE-CONFIRM"], "a second confirmation text",
     p(sms(template="optout_confirmation", contains=["practice_name_neutral"]),
       hist(call("2026-03-10T09:58:00-04:00", None, direction="inbound", channel="sms",
                 text="Stop"),
            call("2026-03-10T09:59:00-04:00", "delivered", channel="sms"))),
     "block", ["TCPA-REVOKE-CONFIRM"])
case("C080", ["TCPA-REVOKE-ALL", "PLAT-PROFILE"], "strict: STOP to texts also stops "
     "prerecorded calls to that number", p(REVOKED_TEXT, {"proposed_action": {
         "dialer": "prerecorded", "content": {"includes_opt_out": True,
                                              "contains": ["practice_name_neutral"]}}}),
     "block", ["TCPA-CONSENT-WIRELESS", "TCPA-REVOKE-ALL"])
case("C081", ["TCPA-REVOKE-ALL", "REGF-MEDIUM-OPTOUT"], "STOP to texts does not stop a manual "
     "live call (medium = texts)", REVOKED_TEXT, "allow")
case("C082", ["TCPA-REVOKE-10BD", "PLAT-HONOR-IMMEDIATELY"], "legal_minimum: revocation "
     "binds after 10 business days; 2 days later the text is still lawful",
     p(LEGAL, sms(), {"revocations": [{"contact_point": "cp_cell", "channel": "sms",
                                      "received_at": "2026-03-08T12:00:00-04:00",
                                      "method": "call_center", "text": None}]}), "allow")
case("C083", ["TCPA-REVOKE-10BD"], "legal_minimum: 15 days after the revocation",
     p(LEGAL, sms(), at("2026-03-23T10:00:00-04:00"),
       {"revocations": [{"contact_point": "cp_cell", "channel": "sms",
                         "received_at": "2026-03-08T12:00:00-04:00", "method": "call_center",
                         "text": None}]}), "block", ["TCPA-CONSENT-WIRELESS"])
case("C084", ["PLAT-HONOR-IMMEDIATELY"], "strict: the same revocation binds at once",
     p(sms(), {"revocations": [{"contact_point": "cp_cell", "channel": "sms",
                               "received_at": "2026-03-08T12:00:00-04:00",
                               "method": "call_center", "text": None}]}),
     "block", ["TCPA-CONSENT-WIRELESS", "PLAT-HONOR-IMMEDIATELY"])
case("C085", ["TCPA-PRERECORDED-RESIDENTIAL"], "4th prerecorded call in 30 days to a "
     "landline without consent",
     p(PRERECORDED_HOME, hist(*[call(d, "no_answer", cp="cp_home", dialer="prerecorded")
                                for d in ("2026-02-20T12:00:00-05:00",
                                          "2026-02-27T12:00:00-05:00",
                                          "2026-03-06T12:00:00-05:00")])),
     "block", ["TCPA-PRERECORDED-RESIDENTIAL"], None, "2026-03-22T08:00:00-04:00")
case("C086", ["TCPA-PRERECORDED-RESIDENTIAL"], "3rd prerecorded call in 30 days is allowed",
     p(PRERECORDED_HOME, hist(*[call(d, "no_answer", cp="cp_home", dialer="prerecorded")
                                for d in ("2026-02-27T12:00:00-05:00",
                                          "2026-03-06T12:00:00-05:00")])), "allow")
case("C087", ["TCPA-PRERECORDED-ID"], "prerecorded message without the automated opt-out",
     p(PRERECORDED_HOME, content(includes_opt_out=False)), "allow_with_modification",
     ["TCPA-PRERECORDED-ID"], "add_identification_and_automated_opt_out")
case("C088", ["TCPA-PATIENT-ROOM"], "autodialed call to a hospital patient-room line",
     {"contact_points": [{**base_input()["contact_points"][1], "id": "cp_room",
                          "line_type": "hospital_patient_room"}],
      "consents": [], "proposed_action": {"contact_point": "cp_room", "dialer": "autodialer"}},
     "block", ["TCPA-PATIENT-ROOM"])
case("C089", ["TCPA-MARKETING-PEWC"], "marketing text with only PEC",
     sms(marketing=True, contains=["marketing_offer"]), "block", ["TCPA-MARKETING-PEWC"])
case("C090", ["TCPA-MARKETING-PEWC"], "marketing text with written consent",
     p(sms(marketing=True, contains=["marketing_offer"]), {"consents": [
         {"contact_point": "cp_cell", "kind": "tcpa_pewc",
          "granted_at": "2026-03-01T09:00:00-05:00", "given_to": "creditor",
          "method": "esign_form"}]}), "allow")
OLD_CONSENT = {"consents": [{"contact_point": "cp_cell", "kind": "tcpa_pec",
                             "granted_at": "2025-06-01T09:00:00-04:00", "given_to": "creditor",
                             "method": "intake_form"}]}


def rnd(result: str | None, date: str = "2026-03-01") -> dict[str, Any]:
    check = None if result is None else {"date": date, "result": result}
    return {"contact_points": [{**base_input()["contact_points"][0], "rnd_check": check}]}


case("C091", ["TCPA-RND", "PLAT-RND-CADENCE"], "old consent with a fresh RND 'no'",
     p(sms(), OLD_CONSENT, rnd("no")), "allow")
case("C092", ["TCPA-RND"], "RND 'yes' after consent voids it",
     p(sms(), OLD_CONSENT, rnd("yes")), "block", ["TCPA-RND"])
case("C093", ["TCPA-RND", "PLAT-DECISION"], "RND no_data: manual live call only",
     p(OLD_CONSENT, rnd("no_data"), {"proposed_action": {"dialer": "autodialer"}}),
     "allow_with_modification", ["TCPA-RND"], "manual_live_call_only")
case("C094", ["TCPA-RND", "PLAT-RND-CADENCE"], "old consent and no RND query",
     p(sms(), OLD_CONSENT, rnd(None)), "block", ["TCPA-RND", "PLAT-RND-CADENCE"])
case("C095", ["TCPA-RND", "PLAT-PROFILE"], "legal_minimum: no RND query is not a violation",
     p(LEGAL, sms(), OLD_CONSENT, rnd(None)), "allow")
case("C096", ["TCPA-CONSENT-WIRELESS"], "unknown line type is treated as wireless",
     p(NO_CONSENT, sms(), {"contact_points": [{**base_input()["contact_points"][0],
                                              "line_type": None}]}),
     "block", ["TCPA-CONSENT-WIRELESS"])

# ---- Reg F conduct -------------------------------------------------------------------------
case("C100", ["REGF-LCM"], "voicemail limited to LCM fields", VOICEMAIL, "allow")
case("C101", ["REGF-LCM", "HIPAA-CONTENT-CLASS"], "voicemail mentioning the balance",
     p(VOICEMAIL, content(contains=["lcm_required_only", "balance_amount"])),
     "allow_with_modification", ["REGF-LCM", "HIPAA-CONTENT-CLASS"],
     "strip_to_C0; limit_to_limited_content_message")
case("C102", ["REGF-EOPTOUT"], "text without an opt-out", sms(includes_opt_out=False),
     "allow_with_modification", ["REGF-EOPTOUT"], "append_opt_out")
case("C103", ["REGF-MEDIUM-OPTOUT"], "consumer asked not to be called on this number",
     {"revocations": [{"contact_point": "cp_cell", "channel": "call",
                       "received_at": "2026-03-09T12:00:00-04:00", "method": "oral",
                       "text": None}]}, "block", ["REGF-MEDIUM-OPTOUT"])
case("C104", ["REGF-MEDIUM-OPTOUT"], "one response after the consumer calls again",
     p({"revocations": [{"contact_point": "cp_cell", "channel": "call",
                         "received_at": "2026-03-05T12:00:00-05:00", "method": "oral",
                         "text": None}]},
       hist(call("2026-03-09T12:00:00-04:00", "voicemail_left_by_consumer",
                 direction="inbound"))), "allow")
case("C105", ["REGF-MEDIUM-OPTOUT"], "email opt-out does not stop letters",
     p(LETTER, {"revocations": [{"contact_point": "cp_email", "channel": "email",
                                "received_at": "2026-03-09T12:00:00-04:00",
                                "method": "email_reply", "text": "do not email me"}]}),
     "allow")
case("C106", ["REGF-MEDIUM-OPTOUT"], "email opt-out stops email",
     p(email(), {"revocations": [{"contact_point": "cp_email", "channel": "email",
                                 "received_at": "2026-03-09T12:00:00-04:00",
                                 "method": "email_reply", "text": "do not email me"}]}),
     "block", ["REGF-MEDIUM-OPTOUT"])
ATTY = {"flags": {"attorney_represented": {"since": "2026-03-02T12:00:00-05:00",
                                           "attorney_name_known": True,
                                           "attorney_unresponsive_days": None}}}
case("C107", ["REGF-ATTY"], "represented consumer", ATTY, "block", ["REGF-ATTY"])
case("C108", ["REGF-ATTY"], "calling the attorney is allowed",
     p(ATTY, {"proposed_action": {"recipient": "attorney"}}), "allow")
CEASE = {"flags": {"cease_requested": {"received_at": "2026-03-02T12:00:00-05:00",
                                       "in_writing": True, "scope": "all"}}}
case("C109", ["REGF-CEASE"], "written cease request", p(CEASE, LETTER), "block",
     ["REGF-CEASE"])
case("C110", ["REGF-CEASE"], "the termination notice may still be sent",
     p(CEASE, LETTER, content(template="cease_ack_efforts_terminated", contains=[])), "allow")
case("C111", ["REGF-3P", "HIPAA-MIN-NEC"], "balance disclosed to the employer",
     {"proposed_action": {"recipient": "employer"}}, "block", ["REGF-3P", "HIPAA-MIN-NEC"])
case("C112", ["REGF-LOCATION"], "second location contact with the same third party",
     p(THIRD_PARTY, DISCLOSED, {"proposed_action": {"recipient": "third_party_location",
                                                     "contact_point": "cp_home",
                                                     "content": {"contains": []}}},
       hist(call("2026-03-05T12:00:00-05:00", "conversation_third_party", cp="cp_home",
                 person="third_party_location"))), "block", ["REGF-LOCATION"])
case("C113", ["REGF-LOCATION"], "first location contact without debt content",
     p(THIRD_PARTY, DISCLOSED, {"proposed_action": {"recipient": "third_party_location",
                                                     "contact_point": "cp_home",
                                                     "content": {"contains": []}}}), "allow")
case("C114", ["REGF-SOCIAL"], "public social-media post",
     {"proposed_action": {"channel": "social_media_public", "contact_point": None,
                          "dialer": None}}, "block", ["REGF-SOCIAL"])
BEHAVIORAL = {"creditor": {"entity_kind": "behavioral_health_practice",
                           "display_name": "Harbor Behavioral Health"}}
case("C115", ["REGF-ENVELOPE", "PLAT-NEUTRAL-NAME", "HIPAA-CONTENT-CLASS"],
     "envelope name reveals a behavioral-health practice", p(BEHAVIORAL, LETTER),
     "allow_with_modification", ["REGF-ENVELOPE", "PLAT-NEUTRAL-NAME"],
     "use_neutral_display_name")
case("C116", ["REGF-WORK-EMAIL"], "employer-provided email without consent",
     p(email(), {"contact_points": [{**base_input()["contact_points"][2],
                                     "employer_provided": True}], "consents": []}),
     "block", ["REGF-WORK-EMAIL"])
case("C117", ["REGF-WORK-EMAIL"], "employer-provided email the consumer used with us",
     p(email(), {"contact_points": [{**base_input()["contact_points"][2],
                                     "employer_provided": True}]},
       hist(call("2026-03-05T12:00:00-05:00", None, direction="inbound", channel="email",
                 cp="cp_email", text="Please send my statement here"))), "allow")
WORKPHONE = {"contact_points": [{"id": "cp_work", "type": "phone", "value": "+15185550199",
                                 "line_type": "landline", "area_code_tz": NY,
                                 "owner": "employer", "employer_provided": True,
                                 "source": "employment_record", "rnd_check": None}],
             "proposed_action": {"contact_point": "cp_work"},
             "debtor": {"designated_inconvenient": [
                 {"kind": "place", "value": "work", "at": "2026-03-01T12:00:00-05:00"}]}}
case("C118", ["REGF-PLACE", "REGF-WORK-PLACE"], "consumer said not at work", WORKPHONE,
     "block", ["REGF-PLACE", "REGF-WORK-PLACE"])
case("C119", ["STATE-MA-WORK"], "MA: no work calls after the request", p(MA, WORKPHONE),
     "block", ["STATE-MA-WORK"])
COLLECTOR_SMS = p(THIRD_PARTY, sms(), {"consents": [
    {"contact_point": "cp_cell", "kind": "tcpa_pec", "granted_at": "2026-02-25T09:00:00-05:00",
     "given_to": "debt_collector", "method": "recorded_call"}]})
case("C120", ["REGF-DISCLOSE"], "collector text without the disclosure", COLLECTOR_SMS,
     "allow_with_modification", ["REGF-DISCLOSE"], "add_debt_collector_disclosure")
case("C121", ["REGF-TEXT-PROC", "REGF-DISCLOSE"], "collector text inside the safe harbor",
     p(COLLECTOR_SMS, DISCLOSED), "allow")
case("C122", ["REGF-TEXT-PROC"], "collector text relying on consent given to the creditor",
     p(THIRD_PARTY, sms(), DISCLOSED), "block", ["REGF-TEXT-PROC"])
case("C123", ["REGF-EMAIL-PROC"], "collector email with no email_use basis",
     p(THIRD_PARTY, email(), DISCLOSED, {"consents": [base_input()["consents"][0]]}),
     "block", ["REGF-EMAIL-PROC"])
VALID = {"flags": {"validation": {"initial_communication_at": "2026-03-02T10:00:00-05:00",
                                  "notice_provided_at": "2026-03-02T10:00:00-05:00"}}}
case("C124", ["REGF-VAL-TIMING"], "no validation notice 8 days after the initial contact",
     p(THIRD_PARTY, DISCLOSED, {"flags": {"validation": {
         "initial_communication_at": "2026-03-02T10:00:00-05:00",
         "notice_provided_at": None}}}), "block", ["REGF-VAL-TIMING"])
case("C125", ["REGF-VAL-TIMING", "REGF-VAL-CONTENT"], "the overdue validation notice itself",
     p(THIRD_PARTY, LETTER, DISCLOSED, content(template="validation_notice_b1", contains=[
         "debt_collection_statement", "balance_amount"]), {"flags": {"validation": {
             "initial_communication_at": "2026-03-02T10:00:00-05:00",
             "notice_provided_at": None}}}), "allow")
case("C126", ["REGF-VAL-CONTENT"], "validation notice missing required items",
     p(THIRD_PARTY, LETTER, DISCLOSED, content(template="validation_notice", contains=[
         "balance_amount"])), "allow_with_modification", ["REGF-VAL-CONTENT"],
     "use_model_form_b1")
case("C127", ["REGF-OVERSHADOW", "REGF-VAL-PERIOD"], "pay-within demand on the last day of "
     "the period (provided Mon 3/2: +5 business days = 3/9, +30 = 4/8)",
     p(THIRD_PARTY, LETTER, DISCLOSED, VALID, at("2026-04-08T12:00:00-04:00"),
       content(contains=["balance_amount", "pay_within_deadline"])),
     "block", ["REGF-OVERSHADOW"], None, "2026-04-09T00:00:00-04:00")
case("C128", ["REGF-OVERSHADOW", "REGF-VAL-PERIOD"], "the day after the period ends",
     p(THIRD_PARTY, LETTER, DISCLOSED, VALID, at("2026-04-09T12:00:00-04:00"),
       content(contains=["balance_amount", "pay_within_deadline"])), "allow")
MEMORIAL = {"flags": {"validation": {"initial_communication_at": "2026-05-21T10:00:00-04:00",
                                     "notice_provided_at": "2026-05-21T10:00:00-04:00"}}}
case("C129", ["REGF-VAL-PERIOD", "REGF-OVERSHADOW"], "Memorial Day is not a business day: "
     "5/21 + 5 business days = 5/29, + 30 = 6/28 (not 6/27)",
     p(THIRD_PARTY, LETTER, DISCLOSED, MEMORIAL, at("2026-06-28T12:00:00-04:00"),
       content(contains=["threat_of_suit"])), "block", ["REGF-OVERSHADOW"], None,
     "2026-06-29T00:00:00-04:00")
DISPUTE = {"flags": {"validation": VALID["flags"]["validation"],
                     "disputed": {"received_at": "2026-03-05T12:00:00-05:00",
                                  "in_writing": True, "verification_sent_at": None}}}
case("C130", ["REGF-DISPUTE-CEASE"], "written dispute in the period, no verification yet",
     p(THIRD_PARTY, DISCLOSED, DISPUTE), "block", ["REGF-DISPUTE-CEASE"])
case("C131", ["REGF-DISPUTE-CEASE"], "verification sent: collection may resume",
     p(THIRD_PARTY, DISCLOSED, DISPUTE, {"flags": {"disputed": {
         "verification_sent_at": "2026-03-08T12:00:00-04:00"}}}), "allow")
case("C132", ["REGF-TBD"], "threat of suit on a time-barred debt",
     p(THIRD_PARTY, DISCLOSED, LETTER, {"debt": {"sol_expired": True}},
       content(contains=["balance_amount", "threat_of_suit"])), "block", ["REGF-TBD"])
FURNISH_OK = p(PA, FURNISH, hist(call("2026-02-20T12:00:00-05:00", "delivered",
                                      channel="letter", cp="cp_mail")))
case("C133", ["REGF-PASSIVE-CR", "MED-NCRA-POLICY"], "letter mailed 18 days ago, no "
     "undeliverable notice", FURNISH_OK, "allow")
case("C134", ["REGF-PASSIVE-CR"], "letter mailed 6 days ago",
     p(PA, FURNISH, hist(call("2026-03-04T12:00:00-05:00", "delivered", channel="letter",
                              cp="cp_mail"))), "block", ["REGF-PASSIVE-CR"], None,
     "2026-03-18T00:00:00-04:00")
case("C135", ["REGF-PASSIVE-CR"], "the only letter came back undeliverable",
     p(PA, FURNISH, hist(call("2026-02-20T12:00:00-05:00", "undeliverable", channel="letter",
                              cp="cp_mail"))), "block", ["REGF-PASSIVE-CR"])
DECEASED = {"debtor": {"deceased": True}}
case("C136", ["PLAT-DECEASED", "HIPAA-PERSONAL-REP", "REGF-DECEASED"],
     "call to a deceased patient's phone", DECEASED, "block",
     ["PLAT-DECEASED", "HIPAA-PERSONAL-REP"])
case("C137", ["PLAT-DECEASED", "HIPAA-PERSONAL-REP"], "letter to the personal representative",
     p(DECEASED, LETTER, {"proposed_action": {"recipient": "personal_representative"}}),
     "allow")
case("C138", ["REGF-DECEASED"], "collector letter implying the spouse owes it",
     p(THIRD_PARTY, DISCLOSED, DECEASED, LETTER, {"proposed_action": {"recipient": "spouse"}}),
     "block", ["REGF-DECEASED"])
case("C139", ["REGF-IDENTITY"], "collector call without a business name",
     p(THIRD_PARTY, DISCLOSED, {"creditor": {"display_name": ""}}), "block",
     ["REGF-IDENTITY"])
NSA_BAD = {"debt": {"nsa": {"status": "prohibited_balance_bill"}}}
case("C140", ["MED-NSA-BALANCE", "REGF-UNAUTH-AMOUNT"], "prohibited balance bill", NSA_BAD,
     "block", ["MED-NSA-BALANCE", "REGF-UNAUTH-AMOUNT"])
case("C141", ["MED-NSA-PPDR"], "patient-provider dispute pending",
     {"debt": {"nsa": {"status": "ppdr_pending"}}}, "block", ["MED-NSA-PPDR"])

# ---- HIPAA ---------------------------------------------------------------------------------
case("C150", ["HIPAA-CONTENT-CLASS"], "text with the service description",
     sms(contains=["practice_name_neutral", "service_description"]),
     "allow_with_modification", ["HIPAA-CONTENT-CLASS"], "strip_to_C1")
case("C151", ["HIPAA-CONTENT-CLASS"], "balance in a text to a number not verified as the "
     "patient's", p(sms(contains=["balance_amount"]), {"contact_points": [
         {**base_input()["contact_points"][0], "owner": "unknown"}]}),
     "allow_with_modification", ["HIPAA-CONTENT-CLASS"], "strip_to_C0")
case("C152", ["HIPAA-CONTENT-CLASS"], "balance in a text to the patient's consented cell",
     sms(contains=["practice_name_neutral", "balance_amount"]), "allow")
case("C153", ["HIPAA-UNENCRYPTED-EMAIL", "HIPAA-CONTENT-CLASS"],
     "procedure in an unencrypted email", email(contains=["balance_amount",
                                                          "procedure_or_cpt"]),
     "allow_with_modification", ["HIPAA-CONTENT-CLASS", "HIPAA-UNENCRYPTED-EMAIL"],
     "strip_to_C1")
case("C154", ["HIPAA-UNENCRYPTED-EMAIL"], "patient accepted unencrypted email risk",
     p(email(contains=["balance_amount", "procedure_or_cpt"]),
       {"debtor": {"patient_email_risk_acknowledged": True}}), "allow")
case("C155", ["HIPAA-CONTENT-CLASS"], "link with PHI in the URL",
     sms(url="https://pay.example.org/p?name=Pat&amount=845.00",
         contains=["practice_name_neutral", "payment_link_with_phi"]),
     "allow_with_modification", ["HIPAA-CONTENT-CLASS"], "use_opaque_link")
case("C156", ["HIPAA-CONTENT-CLASS"], "email subject with the balance",
     email(subject="Past due balance $845.00"), "allow_with_modification",
     ["HIPAA-CONTENT-CLASS"], "use_neutral_subject")
case("C157", ["HIPAA-BAA", "HIPAA-TPO-PAYMENT"], "agency without a BAA",
     p(THIRD_PARTY, DISCLOSED, {"creditor": {"baa_in_place": False}}), "block",
     ["HIPAA-BAA"])
case("C158", ["HIPAA-FAMILY"], "balance to the spouse without a 164.510(b) basis",
     {"proposed_action": {"recipient": "spouse"}}, "block", ["HIPAA-FAMILY"])
case("C159", ["HIPAA-FAMILY"], "spouse involved in payment on record",
     {"proposed_action": {"recipient": "spouse"}, "debtor": {"family_payment_involvement": [
         {"person": "spouse", "recorded_at": "2026-02-01T12:00:00-05:00",
          "basis": "patient agreed at intake"}]}}, "allow")
case("C160", ["STATE-MA-HOUSEHOLD", "HIPAA-FAMILY"], "MA: no debt talk with household members "
     "even with HIPAA basis", p(MA, {"proposed_action": {"recipient": "spouse"},
                                    "debtor": {"family_payment_involvement": [
                                        {"person": "spouse",
                                         "recorded_at": "2026-02-01T12:00:00-05:00",
                                         "basis": "patient agreed at intake"}]}}),
     "block", ["STATE-MA-HOUSEHOLD"])
CONF = {"debtor": {"confidential_comm_request": {"at": "2026-03-01T12:00:00-05:00",
                                                 "instruction": "Mail only to my P.O. box"}},
        "contact_points": [{"id": "cp_pobox", "type": "postal",
                            "value": "PO Box 77, Albany NY 12201", "line_type": None,
                            "area_code_tz": None, "owner": "debtor",
                            "employer_provided": False, "source": "patient_request",
                            "rnd_check": None},
                           {**base_input()["contact_points"][3]},
                           {**base_input()["contact_points"][2]}]}
case("C161", ["HIPAA-CONF-COMM"], "email despite 'mail only to my P.O. box'",
     p(CONF, email()), "block", ["HIPAA-CONF-COMM"])
case("C162", ["HIPAA-CONF-COMM"], "letter to the street address instead of the P.O. box",
     p(CONF, LETTER), "block", ["HIPAA-CONF-COMM"])
case("C163", ["HIPAA-CONF-COMM"], "letter to the P.O. box",
     p(CONF, LETTER, {"proposed_action": {"contact_point": "cp_pobox"}}), "allow")
case("C164", ["HIPAA-MIN-NEC"], "diagnosis codes in a letter",
     p(LETTER, content(contains=["balance_amount", "diagnosis_or_icd"])),
     "allow_with_modification", ["HIPAA-MIN-NEC"], "strip_diagnosis_codes")

# ---- medical debt and credit reporting ----------------------------------------------------
case("C170", ["MED-NCRA-POLICY"], "medical collection under $500",
     p(FURNISH_OK, {"debt": {"balance_cents": 45_000}}), "block", ["MED-NCRA-POLICY"])
case("C171", ["MED-NCRA-POLICY"], "less than 365 days since first delinquency",
     p(FURNISH_OK, {"debt": {"first_delinquency_date": "2025-09-01"}}), "block",
     ["MED-NCRA-POLICY"], None, "2026-09-01T00:00:00-04:00")
case("C172", ["MED-NCRA-POLICY", "PLAT-PROFILE"], "legal_minimum: NCRA policy is not law",
     p(FURNISH_OK, LEGAL, {"debt": {"balance_cents": 45_000}}), "allow")
case("C173", ["STATE-CA-MEDDEBT-CR"], "California medical debt",
     p(FURNISH_OK, {"debtor": {"state": "CA", "zip": "94103",
                               "mailing_tz": "America/Los_Angeles"}}),
     "block", ["STATE-CA-MEDDEBT-CR"])
case("C174", ["STATE-CO-MEDDEBT-CR"], "Colorado medical debt",
     p(FURNISH_OK, {"debtor": {"state": "CO", "zip": "80202", "mailing_tz": "America/Denver"}}),
     "block", ["STATE-CO-MEDDEBT-CR"])
case("C175", ["STATE-NY-MEDDEBT-CR"], "NY-licensed provider",
     p(FURNISH_OK, {"creditor": {"provider_license_state": "NY"}}), "block",
     ["STATE-NY-MEDDEBT-CR"])
case("C176", ["STATE-CO-MEDDEBT-CR"], "collector's first letter to a Colorado consumer",
     p(THIRD_PARTY, DISCLOSED, LETTER, {"debtor": {"state": "CO", "zip": "80202",
                                                   "mailing_tz": "America/Denver"}}),
     "allow_with_modification", ["STATE-CO-MEDDEBT-CR"], "add_colorado_medical_debt_notice")
HOSPITAL = p(PA, {"creditor": {"entity_kind": "hospital_nonprofit_501r",
                               "display_name": "Riverside Community Hospital"},
                  "debt": {"kind": "medical",
                           "first_post_discharge_statement_date": "2026-01-05"},
                  "flags": {"fap": {"eca_notice_sent_at": "2026-03-20T12:00:00-04:00",
                                    "pls_included": True,
                                    "oral_notice_attempt_at": "2026-03-22T12:00:00-04:00",
                                    "application": None}}}, ECA)
case("C177", ["MED-501R-ECA-WAIT"], "ECA on day 119 after the first statement",
     p(HOSPITAL, at("2026-05-04T12:00:00-04:00")), "block", ["MED-501R-ECA-WAIT"], None,
     "2026-05-05T00:00:00-04:00")
case("C178", ["MED-501R-ECA-WAIT", "MED-501R-30DAY-NOTICE"], "ECA on day 120",
     p(HOSPITAL, at("2026-05-05T12:00:00-04:00")), "allow")
case("C179", ["MED-501R-30DAY-NOTICE"], "no oral notice attempt",
     p(HOSPITAL, at("2026-05-05T12:00:00-04:00"),
       {"flags": {"fap": {"oral_notice_attempt_at": None}}}), "block",
     ["MED-501R-30DAY-NOTICE"])
case("C180", ["MED-501R-APP-PERIOD"], "FAP application pending (day 200 < 240)",
     p(HOSPITAL, at("2026-05-05T12:00:00-04:00"),
       {"flags": {"fap": {"application": {"received_at": "2026-04-20T12:00:00-04:00",
                                          "status": "incomplete_pending"}}}}),
     "block", ["MED-501R-APP-PERIOD"])
case("C182", ["MED-501R-APP-PERIOD"], "application received on day 240 (2026-09-02) is in "
     "the period", p(HOSPITAL, at("2026-09-10T12:00:00-04:00"),
                      {"flags": {"fap": {"application": {
                          "received_at": "2026-09-02T12:00:00-04:00",
                          "status": "complete_pending"}}}}),
     "block", ["MED-501R-APP-PERIOD"])
case("C183", ["MED-501R-APP-PERIOD"], "application received on day 241 is outside the "
     "period: no suspension", p(HOSPITAL, at("2026-09-10T12:00:00-04:00"),
                                {"flags": {"fap": {"application": {
                                    "received_at": "2026-09-03T12:00:00-04:00",
                                    "status": "complete_pending"}}}}), "allow")
case("C181", ["MED-501R-BILLING-NOTICE"], "hospital statement without the FAP notice",
     p(HOSPITAL, LETTER), "allow_with_modification", ["MED-501R-BILLING-NOTICE"],
     "append_fap_notice")

# ---- platform --------------------------------------------------------------------------------
BK = {"flags": {"bankruptcy": {"filed_at": "2026-03-01T12:00:00-05:00", "chapter": 7,
                               "status": "filed"}}}
case("C190", ["PLAT-BANKRUPTCY"], "bankruptcy filing known", BK, "block", ["PLAT-BANKRUPTCY"])
case("C191", ["PLAT-BANKRUPTCY"], "communication to the bankruptcy attorney",
     p(BK, {"proposed_action": {"recipient": "attorney"}}), "allow")
case("C192", ["PLAT-REVOKE-NLU"], "inbound text says the patient has a lawyer",
     hist(call("2026-03-09T12:00:00-04:00", None, direction="inbound", channel="sms",
               text="Talk to my lawyer, I have an attorney handling this")), "block",
     ["PLAT-REVOKE-NLU"])
case("C193", ["PLAT-REVOKE-NLU", "TCPA-REVOKE-ANYMEANS"], "free-text revocation",
     p(sms(), hist(call("2026-03-09T12:00:00-04:00", None, direction="inbound",
                        channel="sms", text="please stop texting me"))), "block",
     ["TCPA-CONSENT-WIRELESS", "PLAT-REVOKE-NLU"])


def write(path: Path) -> int:
    from tests.compliance.builders import scenario_line

    lines = []
    for cid, rule_ids, desc, patch, expected, reasons, mod, nxt in CASES:
        line = json.loads(scenario_line(cid, patch, expected, reasons, mod, rule_ids, desc,
                                        "RULES.md"))
        line["expected_next_allowed_at"] = nxt
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


if __name__ == "__main__":
    count = write(Path(__file__).with_name("scenarios.jsonl"))
    print(count, "scenarios")
