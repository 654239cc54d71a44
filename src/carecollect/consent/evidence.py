"""Consent evidence export for one patient (guarantor), for a dispute: every contact
point, consent (with wording version, source, time and who captured it), revocation,
medium opt-out, confidential-communication request, inconvenient-time designation and
contact attempt, as JSON and as a PDF (ReportLab).

The export decrypts PHI (contact values, evidence texts), so it is recorded in the audit
trail as an export (`consent.export`, HIPAA-SEC-AUDIT) in the caller's transaction, with
counts and a SHA-256 of the canonical JSON so the file handed over can be matched to the
audit event later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.consent.models import (
    ConfidentialCommunicationRequest,
    Consent,
    InconvenientDesignation,
    MediumOptOut,
    Revocation,
)
from carecollect.errors import NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.outreach.models import ContactEvent
from carecollect.patient.models import ContactPoint, Guarantor
from carecollect.tenant.models import Organization

FORMAT = "carecollect.consent-evidence/1"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def build_evidence(session: Session, *, keys: OrganizationKeys, guarantor_id: uuid.UUID,
                   generated_at: dt.datetime) -> dict[str, Any]:
    """The evidence document (no audit; `export_evidence` audits)."""
    guarantor = session.get(Guarantor, guarantor_id)
    if guarantor is None:
        raise NotFound("no such guarantor")
    org = session.get(Organization, keys.organization_id)
    cipher = keys.cipher()

    def rows(model: Any, order: Any) -> list[Any]:
        return list(session.scalars(select(model).where(model.guarantor_id == guarantor_id)
                                    .order_by(order, model.id)))

    points = [{
        "id": str(cp.id), "kind": cp.kind,
        "value": cipher.open(cp.value, "contact_point", "value", cp.id),
        "line_type": cp.line_type, "owner": cp.owner, "verified": cp.verified,
        "employer_provided": cp.employer_provided, "source": cp.source, "active": cp.active,
        "added_at": _iso(cp.created_at),
    } for cp in rows(ContactPoint, ContactPoint.created_at)]
    consents = [{
        "id": str(c.id), "contact_point_id": _id(c.contact_point_id), "kind": c.kind,
        "granted_at": _iso(c.granted_at), "given_to": c.given_to, "method": c.method,
        "source": c.source, "wording_version": c.wording_version,
        "captured_by": c.captured_by,
        "evidence": cipher.open(c.evidence, "consent", "evidence", c.id),
    } for c in rows(Consent, Consent.granted_at)]
    revocations = [{
        "id": str(r.id), "contact_point_id": _id(r.contact_point_id), "channel": r.channel,
        "received_at": _iso(r.received_at), "method": r.method,
        "text": cipher.open(r.text, "revocation", "text", r.id),
    } for r in rows(Revocation, Revocation.received_at)]
    opt_outs = [{
        "id": str(o.id), "contact_point_id": _id(o.contact_point_id), "medium": o.medium,
        "received_at": _iso(o.received_at), "method": o.method, "captured_by": o.captured_by,
        "text": cipher.open(o.text, "medium_opt_out", "text", o.id),
    } for o in rows(MediumOptOut, MediumOptOut.received_at)]
    confidential = [{
        "id": str(q.id), "received_at": _iso(q.received_at),
        "allowed_channels": list(q.allowed_channels),
        "allowed_contact_point_ids": list(q.allowed_contact_point_ids),
        "method": q.method, "captured_by": q.captured_by,
        "withdrawn_at": _iso(q.withdrawn_at),
        "instruction": cipher.open(q.instruction, "confidential_comm_request", "instruction",
                                   q.id),
    } for q in rows(ConfidentialCommunicationRequest,
                    ConfidentialCommunicationRequest.received_at)]
    designations = [{
        "id": str(d.id), "kind": d.kind, "value": d.value,
        "designated_at": _iso(d.designated_at), "revoked_at": _iso(d.revoked_at),
        "method": d.method, "captured_by": d.captured_by,
    } for d in rows(InconvenientDesignation, InconvenientDesignation.designated_at)]
    history = [{
        "id": str(e.id), "at": _iso(e.occurred_at), "channel": e.channel,
        "direction": e.direction, "contact_point_id": _id(e.contact_point_id),
        "dialer": e.dialer, "outcome": e.outcome, "person": e.person,
    } for e in rows(ContactEvent, ContactEvent.occurred_at)]
    return {
        "format": FORMAT,
        "generated_at": _iso(generated_at),
        "organization": {"id": str(keys.organization_id),
                         "billing_display_name": org.billing_display_name if org else None},
        "guarantor": {
            "id": str(guarantor.id),
            "name": " ".join(filter(None, (
                cipher.open(guarantor.first_name, "guarantor", "first_name", guarantor.id),
                cipher.open(guarantor.last_name, "guarantor", "last_name", guarantor.id)))),
        },
        "contact_points": points, "consents": consents, "revocations": revocations,
        "medium_opt_outs": opt_outs, "confidential_requests": confidential,
        "inconvenient_designations": designations, "contact_history": history,
    }


def canonical_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def render_pdf(document: dict[str, Any]) -> bytes:
    """A readable PDF of the evidence document (one table per section)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8)
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=letter, title="Consent evidence",
                            leftMargin=36, rightMargin=36, topMargin=36, bottomMargin=36)
    digest = hashlib.sha256(canonical_bytes(document)).hexdigest()
    story: list[Any] = [
        Paragraph("Consent and contact evidence", styles["Title"]),
        Paragraph(f"Organization: {document['organization']['billing_display_name']}",
                  styles["BodyText"]),
        Paragraph(f"Guarantor: {document['guarantor']['name']} "
                  f"({document['guarantor']['id']})", styles["BodyText"]),
        Paragraph(f"Generated: {document['generated_at']}", styles["BodyText"]),
        Paragraph(f"SHA-256 of JSON export: {digest}", small),
    ]
    sections = [
        ("Contact points", "contact_points",
         ["id", "kind", "value", "line_type", "owner", "verified", "added_at"]),
        ("Consents", "consents", ["kind", "contact_point_id", "granted_at", "method", "source",
                                  "wording_version", "captured_by", "evidence"]),
        ("Revocations", "revocations",
         ["channel", "contact_point_id", "received_at", "method", "text"]),
        ("Medium opt-outs", "medium_opt_outs",
         ["medium", "contact_point_id", "received_at", "method", "text"]),
        ("Confidential-communication requests", "confidential_requests",
         ["received_at", "allowed_channels", "method", "withdrawn_at", "instruction"]),
        ("Inconvenient times and places", "inconvenient_designations",
         ["kind", "value", "designated_at", "revoked_at", "method"]),
        ("Contact history", "contact_history",
         ["at", "channel", "direction", "dialer", "outcome", "contact_point_id"]),
    ]
    for title, key, columns in sections:
        story += [Spacer(1, 10), Paragraph(title, styles["Heading2"])]
        items = document[key]
        if not items:
            story.append(Paragraph("None recorded.", styles["BodyText"]))
            continue
        data = [[Paragraph(f"<b>{c}</b>", small) for c in columns]]
        for item in items:
            cells = []
            for column in columns:
                value = item.get(column)
                text = ", ".join(value) if isinstance(value, list) else (
                    "" if value is None else str(value))
                cells.append(Paragraph(_escape(text), small))
            data.append(cells)
        table = Table(data, repeatRows=1)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)]))
        story.append(table)
    pdf.build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def export_evidence(session: Session, *, keys: OrganizationKeys, actor: Actor,
                    guarantor_id: uuid.UUID, generated_at: dt.datetime,
                    formats: tuple[str, ...] = ("json", "pdf")) -> dict[str, bytes]:
    """The export in each requested format (`json`, `pdf`), audited as one export."""
    document = build_evidence(session, keys=keys, guarantor_id=guarantor_id,
                              generated_at=generated_at)
    raw = canonical_bytes(document)
    out: dict[str, bytes] = {}
    if "json" in formats:
        out["json"] = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
    if "pdf" in formats:
        out["pdf"] = render_pdf(document)
    record(session, actor=actor, action="consent.export",
           subject=Subject("guarantor", guarantor_id, organization_id=keys.organization_id,
                           patient_id=guarantor_id),
           details={"formats": sorted(out), "sha256": hashlib.sha256(raw).hexdigest(),
                    "consents": len(document["consents"]),
                    "revocations": len(document["revocations"]),
                    "opt_outs": len(document["medium_opt_outs"]),
                    "contacts": len(document["contact_history"])})
    return out
