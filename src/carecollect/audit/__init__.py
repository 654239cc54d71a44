"""The tamper-evident audit trail: record events, read a patient's access log, integrate
events into the signed Merkle log, verify, prove and export (ARCHITECTURE.md section 5).

Domains call::

    from carecollect.audit import record, Actor, Subject
    record(session, actor=Actor.staff(user_id), action="patient.read",
           subject=Subject("patient", patient_id, organization_id=org_id),
           details={"fields": ["last_name"]})
"""

from carecollect.audit.schemas import AccessLogEntry, Actor, Subject
from carecollect.audit.service import access_log, audited_read, record

__all__ = ["AccessLogEntry", "Actor", "Subject", "access_log", "audited_read", "record"]
