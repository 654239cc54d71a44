"""Platform policy rule units (RULES.md §7)."""

from __future__ import annotations

from carecollect.compliance.facts import Facts
from carecollect.compliance.rules.base import Finding, block, check, modify
from carecollect.compliance.rules.regf import name_flags

DISMISSED = ("dismissed", "closed_dismissed", "stay_lifted", "relief_from_stay")


@check("PLAT-BANKRUPTCY")
def bankruptcy(f: Facts) -> Finding | None:
    flag = f.ctx.flags.bankruptcy
    if flag is None or flag.filed_at > f.t:
        return None
    if flag.status.lower() in DISMISSED or f.action.recipient == "attorney":
        return None
    return block("PLAT-BANKRUPTCY", f"bankruptcy (chapter {flag.chapter}) on record: automatic "
                 "stay / discharge injunction")


@check("PLAT-DECEASED")
def deceased(f: Facts) -> Finding | None:
    if not f.ctx.debtor.deceased:
        return None
    if f.action.recipient in ("personal_representative", "attorney"):
        if f.channel == "letter" or f.action.recipient == "attorney":
            return None
        cp = f.cp
        if cp is None or cp.owner != "debtor":
            return None
    return block("PLAT-DECEASED", "deceased patient: only a letter to the personal "
                 "representative", also=["HIPAA-PERSONAL-REP"])


@check("PLAT-NEUTRAL-NAME")
def neutral_name(f: Facts) -> Finding | None:
    sensitive, collection = name_flags(f)
    if sensitive or (collection and f.channel in ("email", "voicemail", "letter")):
        return modify("PLAT-NEUTRAL-NAME", "use_neutral_display_name",
                      "use the configured neutral billing display name")
    return None


_FLAG_FOR = {"cease": "cease_requested", "dispute": "disputed",
             "attorney": "attorney_represented", "bankruptcy": "bankruptcy"}


@check("PLAT-REVOKE-NLU")
def revoke_nlu(f: Facts) -> Finding | None:
    # (c)-(f) go to human review and suppress outreach meanwhile. The §0.3 format has no
    # "review resolved" marker, so the suppression persists (fail closed); recording a flag
    # does not lift it, which keeps the engine monotone (adding facts never un-blocks).
    if f.action.recipient == "attorney":
        return None
    for e in f.history:
        if e.direction != "inbound" or not e.text:
            continue
        sig = f.signals(e)
        for kind in _FLAG_FOR:
            if getattr(sig, kind):
                return block("PLAT-REVOKE-NLU", f"inbound message classified as {kind}: "
                             "held for human review")
    return None


@check("PLAT-HONOR-IMMEDIATELY")
def honor_immediately(f: Facts) -> Finding | None:
    return None  # applied inside Facts.tcpa_state / medium_optouts; cited on block


@check("PLAT-RND-CADENCE")
def rnd_cadence(f: Facts) -> Finding | None:
    return None  # applied inside TCPA-RND; cited there
