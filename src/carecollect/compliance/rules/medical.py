"""Medical-debt rule units (RULES.md §6): NCRA policy, IRS 501(r), No Surprises Act."""

from __future__ import annotations

import datetime as dt

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import Facts
from carecollect.compliance.rules.base import Finding, block, check, modify

NCRA_MIN_BALANCE_CENTS = 50_000
NCRA_WAIT = dt.timedelta(days=365)
ECA_WAIT = dt.timedelta(days=120)
NOTICE_LEAD = dt.timedelta(days=30)
APPLICATION_PERIOD = dt.timedelta(days=240)
PENDING_FAP = frozenset({"incomplete_pending", "complete_pending", "pending"})


def hospital_mode(f: Facts) -> bool:
    return f.ctx.creditor.entity_kind == "hospital_nonprofit_501r"


def _day_start(f: Facts, day: dt.date) -> dt.datetime:
    return tz.day_start(day, f.primary_zone).astimezone(dt.UTC)


@check("MED-NCRA-POLICY")
def ncra(f: Facts) -> Finding | None:
    debt = f.ctx.debt
    if debt.balance_cents < NCRA_MIN_BALANCE_CENTS:
        return block("MED-NCRA-POLICY", "medical collections under $500 are never furnished")
    if debt.first_delinquency_date is None:
        return block("MED-NCRA-POLICY", "first delinquency date unknown (fail closed)")
    ready = debt.first_delinquency_date + NCRA_WAIT
    if tz.local_date(f.t, f.primary_zone) < ready:
        return block("MED-NCRA-POLICY", f"medical collections are furnished only from {ready} "
                     "(365 days after first delinquency)", _day_start(f, ready))
    return None


@check("MED-501R-ECA-WAIT")
def eca_wait(f: Facts) -> Finding | None:
    if not hospital_mode(f):
        return None
    first = f.ctx.debt.first_post_discharge_statement_date
    if first is None:
        return block("MED-501R-ECA-WAIT", "no first post-discharge statement on record")
    ready = first + ECA_WAIT
    if tz.local_date(f.t, f.primary_zone) < ready:
        return block("MED-501R-ECA-WAIT", f"no ECA before {ready} (120 days after the first "
                     "post-discharge statement)", _day_start(f, ready))
    return None


@check("MED-501R-30DAY-NOTICE")
def eca_notice(f: Facts) -> Finding | None:
    if not hospital_mode(f):
        return None
    fap = f.ctx.flags.fap
    if fap is None or fap.eca_notice_sent_at is None or fap.eca_notice_sent_at > f.t or \
            not fap.pls_included:
        return block("MED-501R-30DAY-NOTICE", "no written ECA notice with the plain-language "
                     "summary on record")
    if fap.oral_notice_attempt_at is None or fap.oral_notice_attempt_at > f.t:
        return block("MED-501R-30DAY-NOTICE", "no oral-notice attempt on record")
    ready = tz.local_date(fap.eca_notice_sent_at, f.primary_zone) + NOTICE_LEAD
    if tz.local_date(f.t, f.primary_zone) < ready:
        return block("MED-501R-30DAY-NOTICE", f"ECA notice must precede the ECA by 30 days "
                     f"(from {ready})", _day_start(f, ready))
    return None


@check("MED-501R-APP-PERIOD")
def app_period(f: Facts) -> Finding | None:
    if not hospital_mode(f) or f.ctx.flags.fap is None:
        return None
    app = f.ctx.flags.fap.application
    if app is None or app.received_at > f.t or app.status not in PENDING_FAP:
        return None
    first = f.ctx.debt.first_post_discharge_statement_date
    received = tz.local_date(app.received_at, f.primary_zone)
    # The application period runs through day 240 after the first post-discharge statement
    # (1.501(r)-1(b)(3)); only an application submitted in it suspends ECAs. Unknown first
    # statement date: treat as inside the period (fail closed).
    if first is not None and received > first + APPLICATION_PERIOD:
        return None
    return block("MED-501R-APP-PERIOD", "a financial-assistance application submitted in "
                 "the application period is pending: ECAs and credit reporting are suspended")


@check("MED-501R-BILLING-NOTICE")
def billing_notice(f: Facts) -> Finding | None:
    if not hospital_mode(f) or "statement" not in f.content.template.lower():
        return None
    if "fap_notice" in f.tags:
        return None
    return modify("MED-501R-BILLING-NOTICE", "append_fap_notice",
                  "hospital billing statements carry the financial-assistance notice")


@check("MED-NSA-BALANCE")
def nsa_balance(f: Facts) -> Finding | None:
    nsa = f.ctx.debt.nsa
    if nsa is None or nsa.status != "prohibited_balance_bill":
        return None
    return block("MED-NSA-BALANCE", "No Surprises Act: the balance bill may not be collected")


@check("MED-NSA-PPDR")
def nsa_ppdr(f: Facts) -> Finding | None:
    nsa = f.ctx.debt.nsa
    if nsa is None or nsa.status != "ppdr_pending" or f.action.recipient == "attorney":
        return None
    return block("MED-NSA-PPDR", "patient-provider dispute resolution pending: collection "
                 "suspended")
