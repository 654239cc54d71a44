"""Contact history: record outbound attempts and inbound contacts (audited)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject
from carecollect.audit.service import PendingEvent, record_many
from carecollect.errors import BadInput
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.models import utcnow
from carecollect.outreach.models import OUTCOMES, ContactEvent

CHANNELS = ("call", "sms", "email", "letter", "voicemail")
DIALERS = ("manual", "autodialer", "prerecorded")


class ContactHistoryService:
    def record_contact(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        contact_point_id: uuid.UUID | None,
        occurred_at: datetime,
        channel: str,
        direction: str,
        outcome: str,
        dialer: str | None = None,
        person: str = "debtor",
        account_ids: list[uuid.UUID] | None = None,
        text: str | None = None,
        flush: bool = True,
        audit: list[PendingEvent] | None = None,
        add: bool = True,
    ) -> ContactEvent:
        """Add one contact-history row and its audit event. The batch dispatcher passes
        `flush=False` (the insert waits for the session's next flush) and `audit` (the
        event is appended there and recorded with the batch's others), or `add=False`
        (the row is returned unsaved: the dispatcher inserts a chunk's rows together)."""
        if channel not in CHANNELS:
            raise BadInput(f"unknown channel {channel!r}")
        if direction not in ("outbound", "inbound"):
            raise BadInput("direction must be outbound or inbound")
        if outcome not in OUTCOMES:
            raise BadInput(f"unknown outcome {outcome!r}")
        if dialer is not None and dialer not in DIALERS:
            raise BadInput(f"unknown dialer {dialer!r}")
        row_id = uuid7()
        event = ContactEvent(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=guarantor_id,
            contact_point_id=contact_point_id,
            occurred_at=occurred_at,
            channel=channel,
            direction=direction,
            outcome=outcome,
            dialer=dialer,
            person=person,
            account_ids=[str(a) for a in account_ids or []],
            text=keys.cipher().seal("contact_event", "text", row_id, text),
            created_at=utcnow(),
        )
        if add:
            session.add(event)
            if flush:
                session.flush()
        pending = PendingEvent(
            actor,
            "contact.record",
            Subject(
                "contact_event",
                row_id,
                organization_id=keys.organization_id,
                patient_id=guarantor_id,
            ),
            "success",
            {"channel": channel, "direction": direction, "outcome": outcome},
        )
        if audit is None:
            record_many(session, [pending])
        else:
            audit.append(pending)
        return event


contact_history_service = ContactHistoryService()
