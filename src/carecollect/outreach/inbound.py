"""Inbound messages: STOP/START/HELP and free text update the consent ledger at once.

PLAT-HONOR-IMMEDIATELY: a revocation is written to the ledger in the webhook's own
transaction, and the dispatcher rebuilds the compliance context under the debtor's lock for
every send, so the next send check sees it. PLAT-REVOKE-NLU: positive or ambiguous
revocations and medium opt-outs suppress that medium; cease, dispute, attorney and
bankruptcy messages raise a flag (which the engine honours) and a staff review item (which
the dispatcher honours) until a person clears them. TCPA-REVOKE-CONFIRM: at most one
confirmation text per opt-out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.compliance.nlu import Classification, classify
from carecollect.consent.models import Consent
from carecollect.consent.service import consent_service
from carecollect.errors import BadInput
from carecollect.kit.contact import normalize_phone
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.outreach.outbox import ContactState, ReviewItem
from carecollect.outreach.service import contact_history_service
from carecollect.patient.models import ContactPoint
from carecollect.patient.service import patient_service
from carecollect.tenant.models import Organization

ACTOR = Actor.webhook("twilio")
_FLAG_OF = {"cease": "cease_requested", "dispute": "dispute",
            "attorney": "attorney_represented", "bankruptcy": "bankruptcy"}
REPLIES = {
    "stop": {
        "en": "{name}: You are unsubscribed and will get no more automated texts from us. "
              "Reply START to resubscribe.",
        "es": "{name}: Se canceló su suscripción y no recibirá más textos automáticos. "
              "Responda START para volver a suscribirse.",
    },
    "start": {
        "en": "{name}: You are subscribed again. Reply STOP to opt out, HELP for help.",
        "es": "{name}: Está suscrito de nuevo. Responda STOP para cancelar, HELP para ayuda.",
    },
    "help": {
        "en": "{name}: For billing questions call {phone}. Reply STOP to opt out.",
        "es": "{name}: Para preguntas de facturación llame al {phone}. Responda STOP para "
              "cancelar.",
    },
}


@dataclass
class InboundResult:
    matched: int = 0
    reply: str | None = None
    actions: list[str] = field(default_factory=list)
    classification: Classification | None = None


def _reply(kind: str, language: str | None, name: str, phone: str) -> str:
    texts = REPLIES[kind]
    return texts.get(language or "en", texts["en"]).format(name=name, phone=phone)


def _contact_state(session: Session, org_id: uuid.UUID, guarantor_id: uuid.UUID,
                   now: datetime) -> ContactState:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    session.execute(insert(ContactState).values(
        organization_id=org_id, guarantor_id=guarantor_id, outbound_count=0, updated_at=now
    ).on_conflict_do_nothing())
    return session.execute(select(ContactState).where(
        ContactState.guarantor_id == guarantor_id).with_for_update()).scalar_one()


def find_phone_points(session: Session, keys: OrganizationKeys, e164: str) -> list[ContactPoint]:
    """Contact points holding this number (blind index, then exact match on the opened
    value: the truncated index admits collisions)."""
    cipher = keys.cipher()
    candidates = session.scalars(select(ContactPoint).where(
        ContactPoint.kind == "phone", ContactPoint.value_bidx == keys.blind().phone(e164)))
    return [cp for cp in candidates if cipher.open_row(cp, "value") == e164]


def handle_inbound_sms(
    session: Session,
    keys: OrganizationKeys,
    organization: Organization,
    *,
    from_number: str,
    body: str,
    received_at: datetime,
    callback_phone: str = "",
) -> InboundResult:
    """Apply one inbound text (tenant session of `organization`, caller commits)."""
    result = InboundResult()
    c = result.classification = classify(body)
    name = organization.billing_display_name
    try:
        e164 = normalize_phone(from_number)
    except BadInput:
        return result
    points = find_phone_points(session, keys, e164)
    result.matched = len(points)
    revoking = c.suppresses_channel and not c.start
    for cp in points:
        state = _contact_state(session, organization.id, cp.guarantor_id, received_at)
        state.last_inbound_at = received_at
        event = contact_history_service.record_contact(
            session, keys=keys, actor=ACTOR, guarantor_id=cp.guarantor_id,
            contact_point_id=cp.id, occurred_at=received_at, channel="sms",
            direction="inbound", outcome="delivered", text=body)
        if c.start and not c.suppresses_channel:
            consent_service.grant(session, keys=keys, actor=ACTOR, guarantor_id=cp.guarantor_id,
                                  contact_point_id=cp.id, kind="tcpa_pec", granted_at=received_at,
                                  method="sms_keyword", source="inbound_sms")
            result.actions.append("grant")
            result.reply = _reply("start", c.language, name, callback_phone)
        if revoking:
            media = [m for m in c.media if m in ("email", "letter")]
            phone_media = [m for m in c.media if m in ("sms", "call", "voicemail")]
            if phone_media or not c.media:
                # A STOP (or a revocation naming no medium) covers texts and calls to this
                # number: texts are calls under the TCPA (TCPA-REVOKE-ANYMEANS).
                consent_service.revoke(session, keys=keys, actor=ACTOR,
                                       guarantor_id=cp.guarantor_id, contact_point_id=cp.id,
                                       channel="all", received_at=received_at,
                                       method="sms_keyword" if c.matched else "free_text")
                result.actions.append("revoke:phone")
            for medium in media:
                consent_service.revoke(session, keys=keys, actor=ACTOR,
                                       guarantor_id=cp.guarantor_id, contact_point_id=None,
                                       channel=medium, received_at=received_at,
                                       method="free_text")
                result.actions.append(f"revoke:{medium}")
            latest_grant = session.scalar(
                select(Consent.granted_at).where(Consent.contact_point_id == cp.id)
                .order_by(Consent.granted_at.desc()).limit(1))
            already = state.last_confirmation_at is not None and (
                latest_grant is None or state.last_confirmation_at >= latest_grant)
            if not already:
                state.last_confirmation_at = received_at
                result.reply = _reply("stop", c.language, name, callback_phone)
        if c.help and not revoking and result.reply is None:
            result.reply = _reply("help", c.language, name, callback_phone)
        for category in ("cease", "dispute", "attorney", "bankruptcy"):
            if not getattr(c, category):
                continue
            attributes: dict[str, object] = {"origin": "inbound_sms"}
            if category == "cease":
                attributes["scope"] = c.medium or "all"
            flag = patient_service.raise_flag(
                session, keys=keys, actor=ACTOR, guarantor_id=cp.guarantor_id,
                kind=_FLAG_OF[category], raised_at=received_at, in_writing=True,
                attributes=attributes, source="inbound_sms")
            session.add(ReviewItem(organization_id=organization.id,
                                   guarantor_id=cp.guarantor_id, kind=category,
                                   flag_id=flag.id, contact_event_id=event.id))
            result.actions.append(f"review:{category}")
    if not points and revoking:
        result.reply = _reply("stop", c.language, name, callback_phone)
    session.flush()
    return result
