"""HIPAA outreach-time rule units (RULES.md §5.1 and the §8 surface table)."""

from __future__ import annotations

import functools
import re

from carecollect.compliance.facts import Facts
from carecollect.compliance.rules.base import Finding, block, check, modify
from carecollect.compliance.rules.regf import SENSITIVE_WORDS, name_flags

C1 = frozenset({"balance_amount", "account_last4", "statement_date"})
C2 = frozenset({"date_of_service", "service_description", "procedure_or_cpt",
                "diagnosis_or_icd", "provider_specialty", "medication",
                "practice_name_sensitive", "payment_link_with_phi"})
SUBJECT_WORDS = ("$", "past due", "overdue", "collection", "debt", "balance", "owe",
                 "delinquen", "final notice", "amount due")
_URL_PHI = re.compile(r"(name|amount|amt|balance|dob|birth|mrn|acct|account|dos|ssn|patient"
                      r"|diagnos|procedure|service)\s*=|\$|%24|@", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _subject_reveals(subject: str) -> bool:
    # Cached: a campaign sends one subject line to many recipients.
    lowered = subject.lower()
    return any(w in lowered for w in (*SUBJECT_WORDS, *SENSITIVE_WORDS))


def content_class(tags: frozenset[str]) -> int:
    if tags & C2:
        return 2
    if tags & C1:
        return 1
    return 0


def _sms_may_carry_c1(f: Facts) -> bool:
    # "balance only if number verified as patient's + consented" (RULES.md §8).
    cp = f.cp
    if cp is None or cp.owner != "debtor" or cp.employer_provided:
        return False
    return f.tcpa_state(cp.id)[0] is not None


def allowed_class(f: Facts) -> int:
    ch = f.channel
    if ch == "sms":
        return 1 if _sms_may_carry_c1(f) else 0
    if ch == "voicemail" or (ch == "call" and f.action.dialer == "prerecorded"):
        return 0
    if ch == "email":
        if f.content.encrypted_or_portal or f.ctx.debtor.patient_email_risk_acknowledged:
            return 2
        return 1
    return 2  # live call with the patient, letter inside a sealed envelope


def url_has_phi(f: Facts) -> bool:
    if "payment_link_with_phi" in f.tags:
        return True
    url = f.content.url
    return bool(url) and bool(_URL_PHI.search(url or ""))


@check("HIPAA-CONTENT-CLASS")
def content_class_rule(f: Facts) -> Finding | None:
    if f.channel == "social_media_public":
        return block("HIPAA-CONTENT-CLASS", "no PHI surface on public social media")
    mods: list[str] = []
    why: list[str] = []
    have = content_class(f.tags - {"payment_link_with_phi"})
    limit = allowed_class(f)
    if have > limit:
        mods.append(f"strip_to_C{limit}")
        why.append(f"C{have} content on a {f.channel} surface that allows C{limit}")
    if url_has_phi(f):
        mods.append("use_opaque_link")
        why.append("link carries PHI; URLs must be opaque tokens")
    if f.channel == "email" and f.content.subject and _subject_reveals(f.content.subject):
        mods.append("use_neutral_subject")
        why.append("email subject must be C0")
    sensitive, _ = name_flags(f)
    if sensitive and f.channel in ("sms", "email", "voicemail", "call", "letter"):
        mods.append("use_neutral_display_name")
        why.append("display name reveals a sensitive specialty")
    if not mods:
        return None
    also = ["HIPAA-UNENCRYPTED-EMAIL"] if f.channel == "email" and have == 2 and limit < 2 \
        else []
    if sensitive:
        also.append("PLAT-NEUTRAL-NAME")
    return modify("HIPAA-CONTENT-CLASS", ";".join(mods), "; ".join(why), also)


@check("HIPAA-UNENCRYPTED-EMAIL")
def unencrypted_email(f: Facts) -> Finding | None:
    if f.content.encrypted_or_portal or f.ctx.debtor.patient_email_risk_acknowledged:
        return None
    if not f.tags & (C2 - {"payment_link_with_phi"}):
        return None
    return modify("HIPAA-UNENCRYPTED-EMAIL", "strip_to_C1",
                  "clinical details in unencrypted email without the patient's accepted risk")


def _vendor_without_baa(f: Facts) -> bool:
    c = f.ctx.creditor
    return (c.type == "third_party" or c.hipaa_role == "business_associate") and \
        not c.baa_in_place


@check("HIPAA-BAA")
def baa(f: Facts) -> Finding | None:
    if not _vendor_without_baa(f):
        return None
    return block("HIPAA-BAA", "sender is a business associate without a BAA",
                 also=["HIPAA-TPO-PAYMENT"])


@check("HIPAA-TPO-PAYMENT")
def tpo_payment(f: Facts) -> Finding | None:
    if not _vendor_without_baa(f):
        return None
    return block("HIPAA-TPO-PAYMENT", "payment disclosures to a vendor require a BAA")


@check("HIPAA-MIN-NEC")
def minimum_necessary(f: Facts) -> Finding | None:
    r = f.action.recipient
    if r in ("employer", "third_party_location") and f.conveys_debt():
        return block("HIPAA-MIN-NEC", f"no PHI to a third party ({r})")
    if f.channel == "letter" and "diagnosis_or_icd" in f.tags:
        return modify("HIPAA-MIN-NEC", "strip_diagnosis_codes",
                      "diagnosis codes are not needed in a collection letter")
    return None


@check("HIPAA-FAMILY")
def family(f: Facts) -> Finding | None:
    r = f.action.recipient
    if r not in ("spouse", "parent") or not f.conveys_debt():
        return None
    if r == "parent" and f.ctx.debtor.minor:
        return None  # parent of an unemancipated minor is the personal representative
    if any(p.person == r and p.recorded_at <= f.t
           for p in f.ctx.debtor.family_payment_involvement):
        return None
    return block("HIPAA-FAMILY", f"no 164.510(b) basis on file for disclosure to the {r}")


@check("HIPAA-PERSONAL-REP")
def personal_rep(f: Facts) -> Finding | None:
    if not f.ctx.debtor.deceased:
        return None
    if f.action.recipient in ("personal_representative", "attorney"):
        return None
    return block("HIPAA-PERSONAL-REP", "patient is deceased: outreach only to the personal "
                 "representative", also=["PLAT-DECEASED"])


_MEDIA_WORDS = {
    "call": ("call", "phone", "voicemail", "ring"),
    "sms": ("text", "sms"),
    "email": ("email", "e-mail"),
    "letter": ("mail", "letter", "p.o. box", "po box"),
}
_NEGATIONS = ("don't", "dont", "do not", "no ", "never", "not ", "stop")


def conf_comm_blocks(f: Facts) -> str | None:
    req = f.ctx.debtor.confidential_comm_request
    if req is None or req.at > f.t:
        return None
    medium = "call" if f.channel in ("call", "voicemail") else f.channel
    if medium not in _MEDIA_WORDS:
        return None
    text = " " + req.instruction.lower() + " "
    mentioned = {m for m, words in _MEDIA_WORDS.items() if any(w in text for w in words)}
    if not mentioned:
        return "confidential-communication instruction is not machine-readable (human review)"
    if " only" in text:
        if medium not in mentioned:
            return "request limits communications to " + ", ".join(sorted(mentioned))
        if medium == "letter" and ("po box" in text or "p.o. box" in text):
            cp = f.cp
            value = (cp.value.lower() if cp else "").replace(".", "")
            if "po box" not in value:
                return "letters must go to the requested P.O. box"
        if medium == "call" and " cell" in text and f.cp is not None and \
                f.cp.line_type != "wireless":
            return "calls only to the requested cell phone"
        return None
    if any(n in text for n in _NEGATIONS) and medium in mentioned:
        if medium == "call" and "home" in text and f.cp is not None and \
                f.cp.line_type == "wireless":
            return None  # "don't call my home" leaves the cell phone
        return f"request excludes {medium}"
    return None


@check("HIPAA-CONF-COMM")
def confidential_comm(f: Facts) -> Finding | None:
    why = conf_comm_blocks(f)
    if why is None:
        return None
    return block("HIPAA-CONF-COMM", why)
