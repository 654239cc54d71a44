"""Exporting sequenced audit events as JSON lines or FHIR R4 AuditEvent resources."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carecollect.audit.repository import audit_repository
from carecollect.audit.vocabulary import fhir_action_code
from carecollect.kit.audit.canonical import timestamp_text

# FHIR R4 AuditEvent.outcome (http://hl7.org/fhir/audit-event-outcome): 0 success,
# 4 minor failure, 8 serious failure, 12 major failure. A denial is the system working
# as intended (a refused request, minor); a failure is an action that did not complete.
# No recorded outcome maps to 12 today: that code is kept for failures that compromise
# the system itself, which are reported by `audit verify`, not recorded as events.
FHIR_OUTCOME = {"success": "0", "denied": "4", "failure": "8"}

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_AGENT_TYPE = {
    "staff": ("humanuser", "human user"),
    "patient": ("humanuser", "human user"),
    "api_key": ("datacollector", "data collector"),
    "system": ("dataprocessor", "data processor"),
    "webhook": ("datacollector", "data collector"),
}
IDENTIFIER_SYSTEM = "urn:carecollect:"


def _event_type(action: str) -> dict[str, str]:
    area, verb = action.split(".", 1)[0], action.rsplit(".", 1)[-1]
    if verb in ("login", "logout"):
        return {"system": _DCM, "code": "110114", "display": "User Authentication"}
    if verb == "export":
        return {"system": _DCM, "code": "110106", "display": "Export"}
    if verb == "search":
        return {"system": _DCM, "code": "110112", "display": "Query"}
    if area in ("patient", "portal", "consent", "payment"):
        return {"system": _DCM, "code": "110110", "display": "Patient Record"}
    return {"system": _DCM, "code": "110100", "display": "Application Activity"}


class ExportedEvent:
    """One sequenced event with its body parsed."""

    __slots__ = ("action", "actor_id", "actor_type", "details", "id", "organization_id",
                 "outcome", "patient_id", "recorded_at", "seq", "subject_id", "subject_type")

    def __init__(self, row: Any) -> None:
        body = json.loads(row.body)
        self.seq: int = int(row.seq)
        self.recorded_at: str = row.recorded_at
        self.organization_id: str | None = row.organization_id
        self.patient_id: str | None = row.patient_id
        self.id: str = body["id"]
        self.action: str = body["action"]
        self.actor_type: str = body["actor_type"]
        self.actor_id: str = body["actor_id"]
        self.subject_type: str | None = body["subject_type"]
        self.subject_id: str | None = body["subject_id"]
        self.outcome: str = body["outcome"]
        self.details: dict[str, Any] = body["details"]


def to_json(row: ExportedEvent) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "id": row.id,
        "recorded_at": row.recorded_at,
        "organization_id": row.organization_id,
        "actor": {"type": row.actor_type, "id": row.actor_id},
        "action": row.action,
        "subject": None if row.subject_type is None
        else {"type": row.subject_type, "id": row.subject_id},
        "patient_id": row.patient_id,
        "outcome": row.outcome,
        "details": row.details,
    }


def to_fhir(row: ExportedEvent) -> dict[str, Any]:
    """One event as a FHIR R4 AuditEvent resource (no PHI: identifiers only)."""
    agent_code, agent_display = _AGENT_TYPE.get(row.actor_type, ("dataprocessor", "process"))
    entities: list[dict[str, Any]] = []
    if row.patient_id is not None:
        entities.append({
            "what": {"identifier": {"system": IDENTIFIER_SYSTEM + "patient",
                                    "value": row.patient_id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "1", "display": "Patient"},
        })
    if row.subject_type is not None and not (
        row.subject_type == "patient" and row.subject_id == row.patient_id
    ):
        entities.append({
            "what": {"identifier": {"system": IDENTIFIER_SYSTEM + row.subject_type,
                                    "value": row.subject_id or ""}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "4", "display": "Domain Resource"},
        })
    if entities and row.details:
        entities[-1]["detail"] = [{
            "type": "details",
            "valueString": json.dumps(row.details, sort_keys=True, separators=(",", ":")),
        }]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": _event_type(row.action),
        "subtype": [{"system": IDENTIFIER_SYSTEM + "audit-action", "code": row.action}],
        "action": fhir_action_code(row.action),
        "recorded": row.recorded_at,
        "outcome": FHIR_OUTCOME[row.outcome],
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                "code": agent_code, "display": agent_display}]},
            "who": {"identifier": {"system": IDENTIFIER_SYSTEM + row.actor_type,
                                   "value": row.actor_id}},
            "requestor": row.actor_type in ("staff", "patient", "api_key"),
        }],
        "source": {
            "site": "carecollect",
            "observer": {"display": "carecollect"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                      "code": "4", "display": "Application Server"}],
        },
        "extension": [{"url": IDENTIFIER_SYSTEM + "audit-seq", "valueInteger": row.seq}],
    }
    if entities:
        resource["entity"] = entities
    return resource


def export_events(
    session: Session,
    *,
    fmt: str = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    organization_id: uuid.UUID | None = None,
) -> Iterator[dict[str, Any]]:
    """Sequenced events in log order, as JSON-lines objects or FHIR AuditEvents."""
    if fmt not in ("jsonl", "fhir"):
        raise ValueError("format must be 'jsonl' or 'fhir'")
    convert = to_fhir if fmt == "fhir" else to_json
    for row in audit_repository.export_rows(
        session,
        organization_id=None if organization_id is None else str(organization_id),
        since=None if since is None else timestamp_text(since),
        until=None if until is None else timestamp_text(until),
    ):
        yield convert(ExportedEvent(row))
