"""Audit trail tables.

Four append-only tables (UPDATE and DELETE are rejected by database triggers, see
migration 0002):

* `audit_event`: one row per recorded action, written by `record()` in the caller's
  transaction. `ordinal` is the database's insertion number (it may have gaps after
  rollbacks); it is not the log position.
* `audit_log_entry`: the integrator's gap-free sequence number for each event, with the
  chain hash after that event.
* `audit_tree_hash`: every stored Merkle tree hash (leaves and complete subtrees) by its
  stored-hash position (the numbering of golang.org/x/mod/sumdb/tlog), packed in runs of
  up to 1,024 consecutive positions, so that any inclusion or consistency proof needs
  O(log n) reads.
* `audit_checkpoint`: each signed checkpoint (C2SP tlog-checkpoint note).

The audit tables are deliberately not tenant tables: the integrator and the verifier are
cross-tenant, and an organization's crypto-shredding must not remove its audit history.
`organization_id` is carried (nullable for system events) so repositories can scope
access-log and export queries; there is no foreign key so that deleting an organization
never cascades into the evidence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, UTCDateTime

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY; that
# alias is what makes appends cheap, so the 64-bit type is INTEGER there.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")

AUDIT_TABLES = ("audit_event", "audit_log_entry", "audit_tree_hash", "audit_checkpoint")


class AuditEvent(Base):
    __tablename__ = "audit_event"

    ordinal: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    # The three query keys, stored as the exact text that enters the canonical bytes
    # (UUID text, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which sorts chronologically).
    recorded_at: Mapped[str] = mapped_column(String(27))
    organization_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # The patient (guarantor) the event concerns, also when the subject is one of their
    # accounts, consents or payments: the key of the per-patient access log and the
    # FHIR AuditEvent entity with the patient role.
    patient_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Everything else (id, actor, action, subject, outcome, details) as canonical JSON.
    body: Mapped[str] = mapped_column(Text())

    __table_args__ = (
        # The per-patient access log ("who viewed my record") is the only hot query.
        Index("ix_audit_event_patient", "patient_id", "organization_id"),
    )


class AuditLogEntry(Base):
    __tablename__ = "audit_log_entry"

    seq: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=False)
    event_ordinal: Mapped[int] = mapped_column(BigInteger(), unique=True)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeHash(Base):
    __tablename__ = "audit_tree_hash"

    # First stored-hash position of the run; `hashes` is up to 1,024 concatenated 32-byte
    # hashes at consecutive positions (see carecollect.audit.tree_store).
    position: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary())


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoint"

    tree_size: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
