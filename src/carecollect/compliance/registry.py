"""Rule metadata for every rule id of RULES.md (ids spelled exactly as in the catalog).

`kind` says how a rule is enforced: `event` rules are evaluated for each proposed outreach
event by the engine; `template`, `build_time` and `informational` rules are listed (and
cited where an event rule relies on them) but are enforced elsewhere (template authoring,
the security design, the audit trail) or carry no obligation today. `scope` says whom a rule
binds: `everyone`; `collector` (debt collectors: third parties and creditors using a name
that suggests a third party); `star` (RULES.md ★: collectors always, first-party creditors
in the `strict` profile as platform policy); `platform` (engineering policy, `strict` only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

Scope = Literal["everyone", "collector", "star", "platform"]
Kind = Literal["event", "template", "build_time", "informational", "convention"]

ALL = frozenset({"call", "sms", "email", "letter", "voicemail", "credit_report_furnish", "eca",
                 "social_media_public"})
COMMS = frozenset({"call", "sms", "email", "letter", "voicemail", "social_media_public"})
TIMED = frozenset({"call", "sms", "email", "voicemail"})
PHONE = frozenset({"call", "sms", "voicemail"})
CALLS = frozenset({"call", "voicemail"})
REPORT = frozenset({"credit_report_furnish", "eca"})


@dataclasses.dataclass(frozen=True, slots=True)
class RuleMeta:
    id: str
    title: str
    citation: str
    verification: str
    jurisdiction: str
    channels: frozenset[str]
    scope: Scope
    kind: Kind = "event"
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None
    # The `strict` profile applies some rules before their legal effective date (e.g.
    # TCPA-REVOKE-ALL, RULES.md §9 item 10).
    strict_ignores_effective_from: bool = False

    @property
    def profiles(self) -> tuple[str, ...]:
        return ("strict",) if self.scope == "platform" else ("strict", "legal_minimum")

    def in_force(self, on: dt.date, profile: str) -> bool:
        if self.effective_from is not None and on < self.effective_from and not (
            profile == "strict" and self.strict_ignores_effective_from
        ):
            return False
        return self.effective_to is None or on < self.effective_to

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id, "title": self.title, "citation": self.citation,
            "verification": self.verification, "jurisdiction": self.jurisdiction,
            "channels": sorted(self.channels), "scope": self.scope,
            "profiles": list(self.profiles), "kind": self.kind,
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
        }


D = dt.date
_N = frozenset[str]()

RULES: tuple[RuleMeta, ...] = (
    # §0.2 / §7 engine conventions and platform policies
    RuleMeta("PLAT-TIME-BOUNDARY", "Windows are half-open [start, end) local", "RULES.md §0.2",
             "U", "US", TIMED, "everyone", "convention"),
    RuleMeta("PLAT-TZ-RESOLVE", "Every candidate zone (ZIP, area code, stated location)",
             "RULES.md §0.2; Reg F comment 6(b)(1)(i)", "U", "US", TIMED, "everyone",
             "convention"),
    RuleMeta("PLAT-TIME-CHANNELS", "Time rules apply to calls, voicemail, SMS, email at send",
             "RULES.md §0.2", "S", "US", TIMED, "everyone", "convention"),
    RuleMeta("PLAT-DAY-COUNT", "N within 7 days = calendar days D-6..D, mailing zone",
             "RULES.md §0.2", "U", "US", PHONE | {"email"}, "everyone", "convention"),
    RuleMeta("PLAT-ATTEMPT-VS-CONVERSATION", "Outcome vocabulary for contact counting",
             "RULES.md §0.2; 12 CFR 1006.14(b)(3)(ii)", "V", "US", PHONE, "everyone",
             "convention"),
    RuleMeta("PLAT-PROFILE", "strict vs legal_minimum profile", "RULES.md §0.2", "U", "US", ALL,
             "everyone", "convention"),
    RuleMeta("PLAT-DECISION", "block / allow_with_modification / allow", "RULES.md §0.2", "U",
             "US", ALL, "everyone", "convention"),
    RuleMeta("PLAT-BANKRUPTCY", "No collection outreach or furnishing after a known filing",
             "11 USC 362(a)(6); 11 USC 524", "U", "US", ALL, "everyone"),
    RuleMeta("PLAT-DECEASED", "Deceased: only the personal representative, by letter",
             "RULES.md §7; 12 CFR 1006.6(a)(4); 45 CFR 164.502(f)-(g)", "S", "US", COMMS,
             "platform"),
    RuleMeta("PLAT-NEUTRAL-NAME", "Neutral billing display name on exposed surfaces",
             "RULES.md §7", "U", "US", COMMS, "platform"),
    RuleMeta("PLAT-REVOKE-NLU", "Free-text inbound classification suppresses outreach",
             "RULES.md §7; 47 CFR 64.1200(a)(10)", "U", "US", ALL, "platform"),
    RuleMeta("PLAT-HONOR-IMMEDIATELY", "Opt-outs honored before the next event",
             "RULES.md §7", "U", "US", COMMS, "platform"),
    RuleMeta("PLAT-RND-CADENCE", "RND query within 30 days when consent is older than 30 days",
             "RULES.md §7; 47 CFR 64.1200(m)", "U", "US", PHONE, "platform"),
    # §2 Reg F
    RuleMeta("REGF-TIME-8TO9", "No contact before 08:00 or from 21:00 local",
             "12 CFR 1006.6(b)(1)(i), (b)(4); 15 USC 1692c(a)(1)", "V", "US", TIMED, "star"),
    RuleMeta("REGF-TIME-MULTITZ", "Convenient in every candidate location",
             "Reg F comment 6(b)(1)(i)", "U", "US", TIMED, "star"),
    RuleMeta("REGF-TIME-DESIGNATED", "Consumer-designated inconvenient times/days",
             "12 CFR 1006.6(b)(1); comments 6(b)(1)-1, -2", "S", "US", TIMED, "star"),
    RuleMeta("REGF-PLACE", "No contact at a place known to be inconvenient",
             "12 CFR 1006.6(b)(1)(ii)", "V", "US", TIMED, "star"),
    RuleMeta("REGF-WORK-PLACE", "No workplace contact when the employer prohibits it",
             "12 CFR 1006.6(b)(3); 15 USC 1692c(a)(3)", "S", "US", TIMED, "star"),
    RuleMeta("REGF-WORK-EMAIL", "No email to an employer-provided address",
             "12 CFR 1006.22(f)(3)", "V", "US", frozenset({"email"}), "star"),
    RuleMeta("REGF-ATTY", "Represented consumer: communicate only with the attorney",
             "12 CFR 1006.6(b)(2); 15 USC 1692c(a)(2)", "S", "US", COMMS, "star"),
    RuleMeta("REGF-CEASE", "Written cease: stop communicating about the debt",
             "12 CFR 1006.6(c); 15 USC 1692c(c)", "S", "US", COMMS, "star"),
    RuleMeta("REGF-3P", "No communication about the debt with third parties",
             "12 CFR 1006.6(a), (d)(1); 15 USC 1692c(b), (d)", "V", "US", COMMS, "star"),
    RuleMeta("REGF-LOCATION", "Location contacts: once, no debt, not after attorney",
             "12 CFR 1006.10(b)-(c)", "V", "US", COMMS, "collector"),
    RuleMeta("REGF-LCM", "Voicemail must be a limited-content message",
             "12 CFR 1006.2(j); comments 2(j)-2, -3", "S", "US", frozenset({"voicemail"}),
             "star"),
    RuleMeta("REGF-EMAIL-PROC", "Email safe-harbor procedures",
             "12 CFR 1006.6(d)(3)-(4)", "S", "US", frozenset({"email"}), "collector"),
    RuleMeta("REGF-TEXT-PROC", "Text safe harbor: consent/use + RND 'no'",
             "12 CFR 1006.6(d)(5)", "U", "US", frozenset({"sms"}), "collector"),
    RuleMeta("REGF-EOPTOUT", "Electronic messages carry an opt-out",
             "12 CFR 1006.6(e)", "S", "US", frozenset({"sms", "email"}), "star"),
    RuleMeta("REGF-MEDIUM-OPTOUT", "Honor a request not to use a medium/address",
             "12 CFR 1006.14(h)", "V", "US", TIMED, "star"),
    RuleMeta("REGF-CALL-7IN7", "No more than 7 placed calls per person per debt in 7 days",
             "12 CFR 1006.14(b)(2)(i)(A), (b)(3)-(4)", "V", "US", CALLS, "star"),
    RuleMeta("REGF-CALL-7AFTERCONV", "No call within 7 days after a conversation",
             "12 CFR 1006.14(b)(2)(i)(B)", "V", "US", CALLS, "star"),
    RuleMeta("REGF-CALL-EXCLUSIONS", "Excluded calls (direct consent, not connected, ...)",
             "12 CFR 1006.14(b)(3)(i)-(iii)", "V", "US", CALLS, "star"),
    RuleMeta("REGF-IDENTITY", "Calls disclose the caller's identity", "12 CFR 1006.14(g)", "V",
             "US", frozenset({"call"}), "collector"),
    RuleMeta("REGF-DISCLOSE", "Mini-Miranda / debt-collector disclosure",
             "12 CFR 1006.18(e); 15 USC 1692e(11)", "U", "US",
             frozenset({"call", "sms", "email", "letter"}), "collector"),
    RuleMeta("REGF-ENVELOPE", "Envelope: no debt-collection or specialty name",
             "12 CFR 1006.22(f)(1)-(2)", "V", "US", frozenset({"letter"}), "star"),
    RuleMeta("REGF-SOCIAL", "No public social-media collection communication",
             "12 CFR 1006.22(f)(4)", "V", "US", frozenset({"social_media_public"}), "star"),
    RuleMeta("REGF-UNAUTH-AMOUNT", "No amounts not authorized or permitted by law",
             "12 CFR 1006.22(b)", "V", "US", ALL, "star"),
    RuleMeta("REGF-VAL-TIMING", "Validation notice within 5 days of initial communication",
             "12 CFR 1006.34(a)", "V", "US", ALL, "collector"),
    RuleMeta("REGF-VAL-CONTENT", "Validation notice content (Model Form B-1)",
             "12 CFR 1006.34(c)-(d); App. B Form B-1; 1006.42", "V", "US",
             frozenset({"letter", "email"}), "collector"),
    RuleMeta("REGF-VAL-PERIOD", "Validation period: 5 business days + 30 days",
             "12 CFR 1006.34(b)(5)", "V", "US", ALL, "collector"),
    RuleMeta("REGF-OVERSHADOW", "No overshadowing during the validation period",
             "12 CFR 1006.38(b)", "S", "US", COMMS, "collector"),
    RuleMeta("REGF-DISPUTE-CEASE", "Written dispute in period: cease until verification",
             "12 CFR 1006.38(c)-(d); 15 USC 1692g(b), 1692e(8)", "S", "US", ALL, "collector"),
    RuleMeta("REGF-TBD", "No suit or threat of suit on time-barred debt",
             "12 CFR 1006.26(b)", "V", "US", ALL, "collector"),
    RuleMeta("REGF-PASSIVE-CR", "No furnishing before contacting the consumer",
             "12 CFR 1006.30(a); comments 30(a)(1)-2, -3", "V", "US",
             frozenset({"credit_report_furnish"}), "star"),
    RuleMeta("REGF-DECEASED", "Deceased consumer: personal representative only",
             "12 CFR 1006.6(a)(4); comment 38-3", "S", "US", COMMS, "collector"),
    # §3 TCPA
    RuleMeta("TCPA-CONSENT-WIRELESS", "Automated calls/texts to wireless need live PEC",
             "47 CFR 64.1200(a)(1)(iii)", "V", "US", PHONE, "everyone"),
    RuleMeta("TCPA-PRERECORDED-RESIDENTIAL", "Prerecorded to residential: <=3 per 30 days",
             "47 CFR 64.1200(a)(3)(iii), (b), (d)", "V", "US", CALLS, "everyone"),
    RuleMeta("TCPA-PRERECORDED-ID", "Prerecorded: identification and automated opt-out",
             "47 CFR 64.1200(b)(1)-(3)", "V", "US", CALLS, "everyone"),
    RuleMeta("TCPA-HC-EXEMPT-NA", "Healthcare exemption unavailable for billing content",
             "47 CFR 64.1200(a)(9)(iv)(C)-(D)", "V", "US", PHONE, "everyone"),
    RuleMeta("TCPA-PATIENT-ROOM", "No automated calls to patient-room lines without PEC",
             "47 CFR 64.1200(a)(1)(i)-(ii)", "V", "US", PHONE, "everyone"),
    RuleMeta("TCPA-REVOKE-ANYMEANS", "Revocation by any reasonable means",
             "47 CFR 64.1200(a)(10); FCC 24-24; 89 FR 15756", "S", "US", PHONE, "everyone",
             effective_from=D(2025, 4, 11)),
    RuleMeta("TCPA-REVOKE-10BD", "Honor revocation within 10 business days",
             "47 CFR 64.1200(a)(10), (d)(3)", "S", "US", PHONE, "everyone",
             effective_from=D(2025, 4, 11)),
    RuleMeta("TCPA-REVOKE-CONFIRM", "One confirmation text within 5 minutes",
             "47 CFR 64.1200(a)(12)", "S", "US", frozenset({"sms"}), "everyone",
             effective_from=D(2024, 4, 4)),
    RuleMeta("TCPA-REVOKE-ALL", "Revocation covers all robocalls/robotexts from the caller",
             "FCC 24-24; DA 25-312; DA 26-12", "S", "US", PHONE, "everyone",
             effective_from=D(2027, 1, 31), strict_ignores_effective_from=True),
    RuleMeta("TCPA-RECONSENT", "Consent after revocation re-authorizes from its time",
             "47 CFR 64.1200(a)(1), (a)(10)", "U", "US", PHONE, "everyone"),
    RuleMeta("TCPA-RND", "Reassigned Numbers Database safe harbor",
             "47 CFR 64.1200(l)-(m)", "V", "US", PHONE, "everyone"),
    RuleMeta("TCPA-MARKETING-PEWC", "Marketing robocalls/texts need written consent",
             "47 CFR 64.1200(a)(2), (f)(9)", "V", "US", PHONE, "everyone"),
    RuleMeta("TCPA-SOLICIT-HOURS", "Telephone solicitations 08:00-21:00 only",
             "47 CFR 64.1200(c)(1)-(2), (d)", "V", "US", PHONE, "everyone"),
    # §4 State
    RuleMeta("STATE-CA-ROSENTHAL", "CA: FDCPA 1692b-1692j bind creditors",
             "Cal. Civ. Code 1788.2(c), 1788.17", "S", "CA", COMMS, "everyone"),
    RuleMeta("STATE-CA-MEDDEBT-CR", "CA: no medical-debt furnishing",
             "Cal. Civ. Code 1785.27 (SB 1061)", "S", "CA",
             frozenset({"credit_report_furnish"}), "everyone", effective_from=D(2025, 1, 1)),
    RuleMeta("STATE-MA-2IN7", "MA: <=2 initiated phone/text contacts per 7 days per debt",
             "940 CMR 7.04(1)(f); 209 CMR 18.16(1)(d)", "S", "MA", PHONE, "everyone"),
    RuleMeta("STATE-MA-WORK", "MA: no workplace calls after the debtor asks",
             "940 CMR 7.04(1)(h); 209 CMR 18.16(1)(c)", "S", "MA", PHONE, "everyone"),
    RuleMeta("STATE-MA-HOUSEHOLD", "MA: do not imply the debt to household members",
             "940 CMR 7.05(2)-(3), 7.06", "S", "MA", COMMS, "everyone"),
    RuleMeta("STATE-NYC-3IN7", "NYC: <=3 communications/attempts per 7 days",
             "6 RCNY 5-77; NYC Admin. Code 20-493.1", "S", "NYC", TIMED, "everyone",
             effective_from=D(2025, 4, 1)),
    RuleMeta("STATE-NYC-ECONSENT", "NYC: email/text only with consent and opt-out",
             "6 RCNY 5-77", "S", "NYC", frozenset({"sms", "email"}), "everyone",
             effective_from=D(2025, 4, 1)),
    RuleMeta("STATE-NY-MEDDEBT-CR", "NY providers: no medical-debt reporting",
             "N.Y. Pub. Health Law 4925-4927; GBL 380-j", "S", "NY",
             frozenset({"credit_report_furnish"}), "everyone", effective_from=D(2023, 12, 13)),
    RuleMeta("STATE-CO-MEDDEBT-CR", "CO: no medical-debt reporting; notice in first letter",
             "HB23-1126 (C.R.S. 5-16-103, 5-18-109)", "S", "CO",
             frozenset({"credit_report_furnish", "letter"}), "everyone",
             effective_from=D(2023, 8, 7)),
    RuleMeta("STATE-WA-3PERWEEK", "WA agencies: <=3/week, <=1/week at work, 07:30-21:00",
             "RCW 19.16.250", "S", "WA", TIMED | {"letter"}, "collector"),
    RuleMeta("STATE-FL-FCCPA-HOURS", "FL: no communication 21:00-08:00 (email excluded)",
             "Fla. Stat. 559.72(17)", "S", "FL", TIMED, "everyone"),
    RuleMeta("STATE-FL-TELEMKT", "FL solicitations: 08:00-20:00, <=3 per 24 h",
             "Fla. Stat. 501.616(6)(a)-(b); 501.059(8)(a)", "S", "FL", PHONE, "everyone"),
    RuleMeta("STATE-OK-TSA", "OK solicitations: 08:00-20:00, <=3 per 24 h",
             "15 O.S. 775C.1 et seq.", "S", "OK", PHONE, "everyone"),
    RuleMeta("STATE-OK-ADAD", "OK prerecorded (ADAD) calls only 09:00-21:00",
             "15 O.S. 755.1(C)(2)", "S", "OK", CALLS, "everyone"),
    RuleMeta("STATE-MD-SPAM", "MD solicitations: 08:00-20:00, <=3 per 24 h",
             "Md. Com. Law 14-4501 to 14-4504", "S", "MD", PHONE, "everyone",
             effective_from=D(2024, 1, 1)),
    RuleMeta("STATE-TX-FDCA", "TX: no repeated calls to harass (Reg F 7-in-7 proxy)",
             "Tex. Fin. Code 392.302(4)", "U", "TX", CALLS, "everyone"),
    RuleMeta("STATE-SUNDAY", "No verified Sunday/holiday ban; per-tenant quiet days",
             "none verified", "U", "US", TIMED, "everyone"),
    # §5.1 HIPAA outreach-time rules
    RuleMeta("HIPAA-TPO-PAYMENT", "Payment disclosures to vendors only under a BAA",
             "45 CFR 164.502(a)(1)(ii), (e); 164.506(c)", "V", "US", ALL, "everyone"),
    RuleMeta("HIPAA-MIN-NEC", "Minimum necessary; nothing to third parties",
             "45 CFR 164.502(b); 164.514(d)", "V", "US", ALL, "everyone"),
    RuleMeta("HIPAA-BAA", "No vendor/agency PHI flow without a BAA",
             "45 CFR 164.502(e), 164.504(e), 164.314(a)", "V", "US", ALL, "everyone"),
    RuleMeta("HIPAA-CONTENT-CLASS", "PHI content class allowed per surface",
             "45 CFR 164.502(b), 164.530(c); HHS OCR FAQ 570", "U", "US", COMMS, "everyone"),
    RuleMeta("HIPAA-CONF-COMM", "Honor confidential-communication requests",
             "45 CFR 164.522(b)(1)(i), (b)(2)(iii)", "V", "US", COMMS, "everyone"),
    RuleMeta("HIPAA-SELFPAY-RESTRICT", "Self-pay restriction: no disclosure to the plan",
             "45 CFR 164.522(a)(1)(vi)", "V", "US", _N, "everyone", "template"),
    RuleMeta("HIPAA-FAMILY", "Family/others only with a 164.510(b) basis",
             "45 CFR 164.510(b); 164.502(g)", "U", "US", COMMS, "everyone"),
    RuleMeta("HIPAA-PERSONAL-REP", "Personal representatives; deceased patients",
             "45 CFR 164.502(f), (g)", "V", "US", COMMS, "everyone"),
    RuleMeta("HIPAA-UNENCRYPTED-EMAIL", "Unencrypted email limited to C0-C1 unless accepted",
             "HHS OCR FAQ 570; 78 FR 5634", "S", "US", frozenset({"email"}), "everyone"),
    RuleMeta("HIPAA-ACCOUNTING", "Accounting of disclosures", "45 CFR 164.528(a)(1)(i)", "U",
             "US", _N, "everyone", "build_time"),
    RuleMeta("HIPAA-ACCESS", "Individual right of access", "45 CFR 164.524", "U", "US", _N,
             "everyone", "build_time"),
    *(
        RuleMeta(rid, title, cite, ver, "US", _N, "everyone", "build_time")
        for rid, title, cite, ver in (
            ("HIPAA-SEC-UNIQUE-ID", "Unique user identification", "45 CFR 164.312(a)(2)(i)",
             "V"),
            ("HIPAA-SEC-EMERGENCY", "Emergency access procedure", "45 CFR 164.312(a)(2)(ii)",
             "V"),
            ("HIPAA-SEC-AUTOLOGOFF", "Automatic logoff", "45 CFR 164.312(a)(2)(iii)", "V"),
            ("HIPAA-SEC-ENCRYPT", "Encryption at rest and in transit",
             "45 CFR 164.312(a)(2)(iv), (e)(2)(ii); 74 FR 19006", "V"),
            ("HIPAA-SEC-AUDIT", "Audit controls", "45 CFR 164.312(b)", "V"),
            ("HIPAA-SEC-INTEGRITY", "Integrity controls", "45 CFR 164.312(c)(1)-(2)", "V"),
            ("HIPAA-SEC-AUTHN", "Person or entity authentication", "45 CFR 164.312(d)", "V"),
            ("HIPAA-SEC-TRANSMISSION", "Transmission security", "45 CFR 164.312(e)(1)-(2)",
             "V"),
            ("HIPAA-ADMIN-RISK", "Risk analysis and management",
             "45 CFR 164.308(a)(1)(ii)(A)-(D)", "U"),
            ("HIPAA-ADMIN-ACCESS", "Workforce and access management",
             "45 CFR 164.308(a)(3)-(4)", "U"),
            ("HIPAA-ADMIN-LOGIN", "Log-in monitoring, password management",
             "45 CFR 164.308(a)(5)(ii)(C)-(D)", "U"),
            ("HIPAA-ADMIN-CONTINGENCY", "Contingency plan", "45 CFR 164.308(a)(7)", "U"),
            ("HIPAA-ADMIN-INCIDENT", "Security incident procedures", "45 CFR 164.308(a)(6)",
             "U"),
            ("HIPAA-BREACH-DEF", "Breach definition and risk assessment", "45 CFR 164.402",
             "S"),
            ("HIPAA-BREACH-INDIV", "Individual notice within 60 days", "45 CFR 164.404", "V"),
            ("HIPAA-BREACH-MEDIA", "Media notice (>500 residents)", "45 CFR 164.406", "S"),
            ("HIPAA-BREACH-HHS", "HHS notice / annual log", "45 CFR 164.408", "V"),
            ("HIPAA-BREACH-BA", "Business associate notice to the covered entity",
             "45 CFR 164.410", "S"),
            ("HIPAA-BREACH-LE-DELAY", "Law-enforcement delay", "45 CFR 164.412", "U"),
            ("HIPAA-BREACH-BURDEN", "Burden of proof", "45 CFR 164.414, 164.530(j)", "U"),
        )
    ),
    # §6 medical debt
    RuleMeta("MED-NCRA-POLICY", "NCRA: no medical collections <$500 or <365 days",
             "NCRA announcements 2022-03-18 / 2023-04-11", "S", "US",
             frozenset({"credit_report_furnish"}), "platform", effective_from=D(2023, 4, 11)),
    RuleMeta("MED-CFPB-RULE-VACATED", "CFPB 2025 medical-debt rule vacated (not law)",
             "E.D. Tex. No. 4:25-cv-16 (2025-07-11)", "S", "US", _N, "everyone",
             "informational"),
    RuleMeta("MED-501R-ECA-WAIT", "501(r): no ECA within 120 days of first statement",
             "26 CFR 1.501(r)-6(a), (b), (c)(3)(i)", "V", "US", REPORT, "everyone"),
    RuleMeta("MED-501R-30DAY-NOTICE", "501(r): written + oral notice >=30 days before ECA",
             "26 CFR 1.501(r)-6(c)(4)(i)", "V", "US", REPORT, "everyone"),
    RuleMeta("MED-501R-APP-PERIOD", "501(r): pending FAP application suspends ECAs",
             "26 CFR 1.501(r)-6(c)(5)-(6); 1.501(r)-1(b)(3)", "V", "US", REPORT, "everyone"),
    RuleMeta("MED-501R-BILLING-NOTICE", "501(r): FAP notice on every billing statement",
             "26 CFR 1.501(r)-4(b)(5)", "S", "US", frozenset({"letter", "email"}),
             "everyone"),
    RuleMeta("MED-NSA-BALANCE", "No Surprises Act: no prohibited balance bills",
             "PHSA 2799B-1, -2; 45 CFR 149.410, 149.420", "U", "US", ALL, "everyone"),
    RuleMeta("MED-NSA-PPDR", "No collection while PPDR is pending",
             "45 CFR 149.610, 149.620", "U", "US", ALL, "everyone"),
    RuleMeta("MED-CFPB-AO-2024", "CFPB 2024 advisory opinion (informational)",
             "89 FR (Oct. 2024)", "U", "US", _N, "everyone", "informational"),
    # Organization overlay (only tightens; RULES.md §7 / ARCHITECTURE.md §7)
    RuleMeta("ORG-WINDOW", "Organization contact window (inside the legal window)",
             "organization overlay", "U", "ORG", TIMED, "everyone"),
    RuleMeta("ORG-QUIET-DAYS", "Organization quiet weekdays", "organization overlay", "U",
             "ORG", TIMED, "everyone"),
    RuleMeta("ORG-HOLIDAYS", "Organization holiday calendar", "organization overlay", "U",
             "ORG", TIMED, "everyone"),
    RuleMeta("ORG-CALL-CAP", "Organization cap on placed calls per 7 days",
             "organization overlay", "U", "ORG", CALLS, "everyone"),
    RuleMeta("ORG-CONTACT-CAP", "Organization cap on contacts per 7 days (all media)",
             "organization overlay", "U", "ORG", TIMED, "everyone"),
)

BY_ID: dict[str, RuleMeta] = {r.id: r for r in RULES}
ORDER: dict[str, int] = {r.id: i for i, r in enumerate(RULES)}
assert len(BY_ID) == len(RULES), "duplicate rule id"  # noqa: S101 - import-time invariant
