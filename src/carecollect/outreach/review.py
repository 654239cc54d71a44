"""The staff review queue: flags a person must look at before collection may go on.

Cease, dispute, attorney, bankruptcy and hardship flags (raised by an inbound message, the
portal, an import or a collector) suppress collection outreach. A person closes each one
with an outcome chosen from a fixed list per kind: some outcomes end the flag (outreach it
suppressed may resume), others confirm it (it stays in force and leaves the queue). The
outcomes are codes, never free text, so the audit trail carries no PHI.

What may be ended and why:

* dispute: FDCPA 15 USC 1692g(b) / Reg F 12 CFR 1006.34(c)(4)(ii): collection of the
  disputed amount stops until verification is mailed; it may resume after
  `verification_sent`, or when the charge is corrected or the consumer withdraws it;
* cease (1692c(c)): a cease request is permanent; the flag is ended only when the message
  was not a cease request at all (`misclassified`);
* attorney (1692c(a)(2)): ended when the message did not name an attorney, or the attorney
  does not respond within a reasonable period or consents (`attorney_no_response`);
* bankruptcy (11 USC 362, the automatic stay): ended when the case is closed or dismissed,
  or the message did not report a bankruptcy;
* hardship (platform policy, the portal's financial-help request): ended when staff have
  arranged a plan or a discount, or declined the request; paused plans resume.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.errors import BadInput, NotFound
from carecollect.ledger.models import Account
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.outbox import ReviewItem
from carecollect.patient.models import Flag
from carecollect.patient.service import patient_service
from carecollect.payment_plan.models import PaymentPlan
from carecollect.payment_plan.service import plan_service

REVIEW_FLAG_KINDS = ("cease_requested", "dispute", "attorney_represented", "bankruptcy",
                     "hardship")


@dataclass(frozen=True)
class Outcome:
    code: str
    label: str
    ends_flag: bool


OUTCOMES: dict[str, tuple[Outcome, ...]] = {
    "dispute": (
        Outcome("verification_sent", "Verification mailed to the consumer: resume", True),
        Outcome("charge_corrected", "Charge corrected or removed: resume", True),
        Outcome("withdrawn", "Consumer withdrew the dispute: resume", True),
        Outcome("keep_suspended", "Keep collection suspended", False),
    ),
    "cease_requested": (
        Outcome("confirmed", "Confirmed cease request: no further collection contact", False),
        Outcome("misclassified", "Not a cease request: end the flag", True),
    ),
    "attorney_represented": (
        Outcome("confirmed", "Confirmed: contact the attorney only", False),
        Outcome("attorney_no_response", "Attorney did not respond or consented: end", True),
        Outcome("misclassified", "No attorney was named: end the flag", True),
    ),
    "bankruptcy": (
        Outcome("confirmed", "Confirmed bankruptcy: collection stays stopped", False),
        Outcome("case_closed", "Case closed or dismissed: end the flag", True),
        Outcome("misclassified", "No bankruptcy was reported: end the flag", True),
    ),
    "hardship": (
        Outcome("arranged", "Plan or discount arranged: resume", True),
        Outcome("declined", "Request declined after review: resume", True),
        Outcome("keep_paused", "Keep outreach and plans paused", False),
    ),
}


@dataclass(frozen=True)
class Resolution:
    flag_id: uuid.UUID
    kind: str
    outcome: str
    ended: bool
    review_items_closed: int
    exclusions_lifted: int
    plans_resumed: int


class ReviewService:
    def queue(self, session: Session, *, limit: int = 200) -> list[Flag]:
        """Flags a person must still review, oldest first (reviewed-and-kept flags stay in
        force but leave the queue)."""
        rows: Sequence[Flag] = session.scalars(
            select(Flag)
            .where(Flag.kind.in_(REVIEW_FLAG_KINDS), Flag.cleared_at.is_(None))
            .order_by(Flag.raised_at, Flag.id)
        ).all()
        return [f for f in rows if not (f.attributes or {}).get("reviewed_at")][:limit]

    def resolve(self, session: Session, *, actor: Actor, flag_id: uuid.UUID, outcome: str,
                at: dt.datetime) -> Resolution:
        """Close a flag's review with `outcome` (one of `OUTCOMES[kind]`), in the caller's
        transaction: the flag is ended or confirmed, its open review items are resolved,
        and, when it ends, the exclusions it caused are lifted and plans a hardship paused
        resume. Audited by each step."""
        flag = session.get(Flag, flag_id)
        if flag is None or flag.kind not in OUTCOMES:
            raise NotFound("no such flag in the review queue")
        choice = next((o for o in OUTCOMES[flag.kind] if o.code == outcome), None)
        if choice is None:
            raise BadInput(f"{outcome!r} is not an outcome for a {flag.kind} flag; choose one "
                           f"of: {', '.join(o.code for o in OUTCOMES[flag.kind])}")
        patient_service.review_flag(session, actor=actor, flag_id=flag.id, outcome=outcome,
                                    at=at, clear=choice.ends_flag)
        closed = session.execute(
            update(ReviewItem)
            .where(ReviewItem.flag_id == flag.id, ReviewItem.state == "open")
            .values(state="resolved", resolved_at=at, resolved_by=_uuid_or_none(actor.id))
        )
        lifted = resumed = 0
        if choice.ends_flag and flag.kind in ("dispute", "hardship"):
            accounts = ([flag.account_id] if flag.account_id is not None else list(
                session.scalars(select(Account.id).where(
                    Account.guarantor_id == flag.guarantor_id))))
            for account_id in accounts:
                lifted += cadence_service.lift_exclusion(
                    session, organization_id=flag.organization_id, actor=actor,
                    account_id=account_id, at=at, reason=flag.kind)
            if flag.kind == "hardship":
                for plan_id in session.scalars(select(PaymentPlan.id).where(
                        PaymentPlan.guarantor_id == flag.guarantor_id,
                        PaymentPlan.status == "paused",
                        PaymentPlan.pause_reason == "hardship")):
                    plan_service.resume(session, actor=actor, plan_id=plan_id, now=at)
                    resumed += 1
        return Resolution(flag.id, flag.kind, outcome, choice.ends_flag,
                          int(getattr(closed, "rowcount", 0) or 0), lifted, resumed)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


review_service = ReviewService()
