"""Staff call tasks (manual dialing) and limited-content voicemail scripts.

The dispatcher puts a call attempt in the work list instead of dialing: no autodialer, no
prerecorded voice (TCPA consent rules for automated calls do not arise). Because time
passes between planning and dialing, `check_before_dial` re-runs the compliance engine
under the debtor's lock at the moment staff are about to dial, and `log_outcome` records
what happened in contact history, where it counts toward the call caps (REGF-7IN7,
PLAT-ATTEMPT-VS-CONVERSATION). If a machine answers, staff read the limited-content
message script (REGF-LCM, 12 CFR 1006.2(j)) and nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.compliance.engine import Decision, evaluate
from carecollect.compliance.overlay import OrgOverlay
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.outreach.context import load_debtor, with_action
from carecollect.outreach.models import OUTCOMES
from carecollect.outreach.outbox import CallTask, ContactState
from carecollect.outreach.service import contact_history_service
from carecollect.outreach.templates import SurfaceContext, render
from carecollect.tenant.models import Organization

VOICEMAIL_OUTCOMES = ("voicemail_lcm", "voicemail_reached_no_message")


@dataclass(frozen=True)
class WorkItem:
    task_id: uuid.UUID
    guarantor_id: uuid.UUID
    contact_point_id: uuid.UUID | None
    due_at: datetime
    script_key: str


def work_list(session: Session, *, now: datetime, limit: int = 100) -> list[WorkItem]:
    """Open call tasks due by `now`, oldest first (tenant session)."""
    rows = session.scalars(select(CallTask).where(CallTask.state == "open",
                                                  CallTask.due_at <= now)
                           .order_by(CallTask.due_at, CallTask.id).limit(limit))
    return [WorkItem(t.id, t.guarantor_id, t.contact_point_id, t.due_at, t.script_key)
            for t in rows]


def voicemail_script(display_name: str, *, contact_person: str, callback_phone: str,
                     language: str = "en", template_id: str = "callback_voicemail") -> str:
    """The limited-content message to leave (linted: only REGF-LCM fields)."""
    rendered = render(template_id, SurfaceContext(
        channel="voicemail", display_name=display_name, language=language,
        variables={"contact_person": contact_person, "callback_phone": callback_phone}))
    return rendered.voicemail or ""


def check_before_dial(session: Session, keys: OrganizationKeys, task_id: uuid.UUID, *,
                      now: datetime, profile: str = "strict",
                      overlay: OrgOverlay | None = None) -> Decision:
    """Re-check a manual call now, holding the debtor's contact-state row lock."""
    task = session.get(CallTask, task_id)
    if task is None:
        raise NotFound("no such call task")
    session.execute(select(ContactState).where(ContactState.guarantor_id == task.guarantor_id)
                    .with_for_update()).scalar_one_or_none()
    org = session.get(Organization, task.organization_id)
    assert org is not None  # noqa: S101 - the task's organization exists (foreign key)
    facts = load_debtor(session, keys, org, task.guarantor_id, now=now, profile=profile)
    ctx = with_action(facts.context, channel="call", at=now,
                      contact_point_id=task.contact_point_id, template=task.script_key,
                      contains=("practice_name_neutral",), includes_opt_out=False,
                      dialer="manual")
    return evaluate(ctx, overlay)


def log_outcome(session: Session, keys: OrganizationKeys, actor: Actor, task_id: uuid.UUID,
                *, outcome: str, occurred_at: datetime, person: str = "debtor") -> CallTask:
    """Record the call's outcome in contact history (it counts toward caps) and close the
    task. A voicemail outcome is recorded on the `voicemail` channel."""
    if outcome not in OUTCOMES:
        raise BadInput(f"unknown outcome {outcome!r}")
    task = session.get(CallTask, task_id)
    if task is None:
        raise NotFound("no such call task")
    if task.state != "open":
        raise BadInput("this call task is already closed")
    channel = "voicemail" if outcome == "voicemail_lcm" else "call"
    event = contact_history_service.record_contact(
        session, keys=keys, actor=actor, guarantor_id=task.guarantor_id,
        contact_point_id=task.contact_point_id, occurred_at=occurred_at, channel=channel,
        direction="outbound", outcome=outcome, dialer="manual", person=person)
    task.state, task.outcome, task.done_at = "done", outcome, occurred_at
    task.contact_event_id = event.id
    session.flush()
    return task
