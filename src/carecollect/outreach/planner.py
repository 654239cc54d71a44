"""The outreach planner: for every account due a cadence step, choose the channel and the
time inside the allowed windows, then create the outreach attempts and their delivery jobs
in one transaction (ARCHITECTURE.md §6 step 1).

How a night's plan is made (`build_plan`):

1. SQL reads the due enrollments with their guarantor's plaintext planning facts, then the
   contact points, consent and revocation timestamps, medium opt-outs, flags in force,
   confidential-communication requests, inconvenient-time designations, behaviour signals,
   balances and 31 days of contact history of those guarantors, as columns (no per-row
   ORM, nothing decrypted). On SQLite, for an organization of at least
   `ARROW_MIN_GUARANTORS`, the reads of tables this transaction has not written go to a
   reader process (`planner_reader`: ADBC, Arrow columns, committed data; see
   `_ArrowReader` for why that is the same data); the others through the session.
2. Stop rules (paid, promised, stop_on signals, zero balance), step conditions and the
   holdout cohort are applied; holdout accounts advance without being contacted.
3. For each account the step's channels are tried in order (primary, then fallbacks).
   Planner-side rules the batch path does not model are applied first:
   HIPAA-CONF-COMM (channel or contact point not allowed by a confidential-communication
   request), REGF-PLACE (a "work" designation blocks employer-provided points) and
   REGF-TIME-DESIGNATED (the proposed local time is moved past designated windows/days).
   Then the compliance engine's batch path (`compliance.batch.evaluate_portfolio`) decides
   every remaining row of that channel at once. Letters are not time-restricted
   (PLAT-TIME-CHANNELS) and are checked here against the conduct flags the batch path uses
   for other channels (PLAT-BANKRUPTCY, REGF-CEASE, REGF-ATTY, PLAT-DECEASED, MED-NSA-*).
   Allowed -> `send` at the proposed time; blocked only by time or frequency rules with a
   next allowed instant within the horizon -> `retime` to that instant; blocked otherwise ->
   the next channel; no channel left -> `blocked` with every rule id met on the way.
4. `persist_plan` inserts the attempts (idempotency key = SHA-256 of account, campaign,
   step and plan date, so a re-run the same day creates nothing new), their
   `outreach.deliver` jobs, one `outreach.plan` audit event per attempt and one
   `outreach.decision` summary event, and advances the enrollments, all in the caller's
   transaction.

The dispatcher re-checks every message with the scalar engine at send time under the
debtor's lock, with the rendered content, so the plan is an optimistic schedule: what it
guarantees is that nothing is planned that the stored state already forbids.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl
from sqlalchemy import (
    Column,
    Connection,
    Delete,
    Insert,
    MetaData,
    String,
    Table,
    Update,
    Uuid,
    and_,
    cast,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import find_tables

from carecollect.audit import Actor, Subject, record
from carecollect.compliance import zones as tz
from carecollect.compliance.batch import UTC_DT, evaluate_portfolio
from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import overlay_for
from carecollect.consent.models import (
    ConfidentialCommunicationRequest,
    Consent,
    InconvenientDesignation,
    MediumOptOut,
    Revocation,
)
from carecollect.consent.preferences import designation_blocks, next_clear
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.models import Job
from carecollect.kit.logging import get_logger
from carecollect.ledger.models import LedgerEntry
from carecollect.outreach.cadence_models import (
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    OutreachExclusion,
    OutreachSignal,
)
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.planner_overlay import applies, decide_with_overlay
from carecollect.outreach.templates import default_templates
from carecollect.patient.models import ContactPoint, Flag, Guarantor
from carecollect.tenant.models import Organization

# Same job kind and queue as the dispatcher (`outreach.dispatch.DELIVER` / `QUEUE`).
DELIVER_KIND = "outreach.deliver"
DELIVER_QUEUE = "outreach"
ACTOR = Actor.system("outreach.planner")
log = get_logger(__name__)
HISTORY_DAYS = 31  # the longest day-window rule (TCPA-PRERECORDED-RESIDENTIAL 30 days)
DEFAULT_HORIZON = dt.timedelta(days=3)
BATCH_CHANNELS = ("sms", "email", "call", "voicemail")
CP_KIND = {"sms": "phone", "call": "phone", "voicemail": "phone", "email": "email",
           "letter": "postal"}
CONDUCT_FLAGS = ("bankruptcy", "cease_requested", "attorney_represented", "deceased")
NO_CONTACT_POINT = "PLAN-NO-CONTACT-POINT"  # not a rule: nothing to send it to
OUTCOMES = ("send", "retime", "blocked", "holdout", "skipped", "stopped")
WHOLE_ORG_SHARE = 0.5  # due guarantors / all: above it, reads skip the due-id filter
ARROW_READS = True  # SQLite: read committed columns through ADBC where that is exact
ARROW_MIN_GUARANTORS = 20_000  # below it the reader process costs more than it saves


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedAttempt:
    """One account's decision for tonight (ids and rule ids only, no PHI)."""

    enrollment_id: uuid.UUID
    account_id: uuid.UUID
    guarantor_id: uuid.UUID
    campaign_id: uuid.UUID
    campaign_key: str
    step: int
    cohort: str
    variant: str | None
    outcome: str  # send | retime | blocked | holdout | skipped | stopped
    channel: str | None
    contact_point_id: uuid.UUID | None
    template_id: str | None
    language: str
    proposed_at: dt.datetime
    scheduled_for: dt.datetime | None
    reasons: tuple[str, ...]
    tried: tuple[str, ...]  # "sms:TCPA-CONSENT-WIRELESS+TCPA-RND", ...
    idempotency_key: str
    local_zone: str

    def as_json(self) -> dict[str, Any]:
        when = self.scheduled_for
        return {
            "account_id": str(self.account_id), "guarantor_id": str(self.guarantor_id),
            "campaign": self.campaign_key, "step": self.step, "cohort": self.cohort,
            "variant": self.variant, "outcome": self.outcome, "channel": self.channel,
            "template": self.template_id, "language": self.language,
            "proposed_at": self.proposed_at.astimezone(tz.zone(self.local_zone)).isoformat(),
            "scheduled_for": None if when is None
            else when.astimezone(tz.zone(self.local_zone)).isoformat(),
            "reasons": list(self.reasons), "tried": list(self.tried),
            "idempotency_key": self.idempotency_key,
        }


@dataclasses.dataclass
class Plan:
    """The night's decisions as columns (`frame`), with views for people and files."""

    organization_id: uuid.UUID
    at: dt.datetime
    frame: pl.DataFrame
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        got = dict(self.frame.group_by("outcome").len().iter_rows())
        return {o: int(got.get(o, 0)) for o in OUTCOMES}

    def attempts(self) -> Iterator[PlannedAttempt]:
        for r in self.frame.iter_rows(named=True):
            yield PlannedAttempt(
                enrollment_id=uuid.UUID(r["enrollment_id"]),
                account_id=uuid.UUID(r["account_id"]),
                guarantor_id=uuid.UUID(r["guarantor_id"]),
                campaign_id=uuid.UUID(r["campaign_id"]), campaign_key=r["campaign_key"],
                step=r["step"], cohort=r["cohort"], variant=r["variant"],
                outcome=r["outcome"], channel=r["channel"],
                contact_point_id=uuid.UUID(r["cp_id"]) if r["cp_id"] else None,
                template_id=r["template_id"], language=r["language"],
                proposed_at=r["proposed_at"], scheduled_for=r["scheduled_for"],
                reasons=tuple(r["reasons"] or ()), tried=tuple(r["tried"] or ()),
                idempotency_key=r["idempotency_key"], local_zone=r["mailing_tz"])

    def to_json(self) -> list[dict[str, Any]]:
        return [a.as_json() for a in self.attempts()]

    def to_csv(self) -> str:
        out = io.StringIO()
        fields = ["account_id", "guarantor_id", "campaign", "step", "cohort", "variant",
                  "outcome", "channel", "template", "language", "proposed_at",
                  "scheduled_for", "reasons", "tried", "idempotency_key"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in self.to_json():
            row["reasons"] = " ".join(row["reasons"])
            row["tried"] = " ".join(row["tried"])
            writer.writerow(row)
        return out.getvalue()


# --------------------------------------------------------------------------- loading
def _uuid_text(column: Any, dialect: str) -> Any:
    """A UUID column as text: PostgreSQL casts; SQLite already stores 32 hex digits, which
    `_frame` hyphenates in Polars (string functions in SQLite cost more than the scan)."""
    if dialect == "postgresql":
        return cast(column, String)
    return column


def _hyphenate(name: str) -> pl.Expr:
    col = pl.col(name)
    parts = [col.str.slice(0, 8), col.str.slice(8, 4), col.str.slice(12, 4),
             col.str.slice(16, 4), col.str.slice(20, 12)]
    return pl.when(col.str.len_bytes() == 32).then(pl.concat_str(parts, separator="-")) \
        .otherwise(col).str.to_lowercase().alias(name)


def _frame(source: Connection | _ArrowReader, stmt: Any,
           schema: dict[str, Any]) -> pl.DataFrame:
    """Run `stmt` and build a typed frame.

    From the session's connection, rows are fetched from the DBAPI cursor, skipping
    SQLAlchemy's per-row type processing (three times the cost at a million rows); from an
    `_ArrowReader` (SQLite, committed data) they arrive as Arrow columns without any Python
    object per value. Either way ids come back as text (see `_uuid_text`), SQLite
    timestamps as their stored UTC text, PostgreSQL ones as aware datetimes, and booleans
    as 0/1 on SQLite; the conversions below are vectorised."""
    names = list(schema)
    if isinstance(source, _ArrowReader):
        raw = source.columns(stmt, names)
    else:
        result = source.execute(stmt)
        rows = result.cursor.fetchall()
        result.close()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        raw = [pl.Series(name, list(column), dtype=None if isinstance(
            schema[name], pl.Datetime) else pl.Int8 if schema[name] == pl.Boolean
            else schema[name], strict=False) for name, column in zip(names, values,
                                                                     strict=True)]
    series = []
    for name, col in zip(names, raw, strict=True):
        target = schema[name]
        if isinstance(target, pl.Datetime):
            if col.dtype == pl.String:
                col = col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC",
                                          strict=False)
            elif not isinstance(col.dtype, pl.Datetime):  # no value at all (Null/Int64)
                col = pl.Series(name, [None] * col.len(), dtype=UTC_DT)
            elif col.dtype.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            series.append(col.dt.convert_time_zone("UTC").cast(UTC_DT))
        elif target == pl.Boolean:
            series.append(col.cast(pl.Int8, strict=False).cast(pl.Boolean))
        else:
            series.append(col.cast(target, strict=False))
    frame = pl.DataFrame(series)
    ids = [n for n in names if (n.endswith("_id") or n == "cp_id") and schema[n] == pl.String]
    return frame.with_columns([_hyphenate(n) for n in ids]) if ids else frame


class _ReaderError(RuntimeError):
    """The reader process could not answer; the reads go through the session instead."""


class _ArrowReader:
    """Column reads of committed data through ADBC's SQLite driver, in a separate process
    (`planner_reader`, which says why it is a process): Arrow columns that Polars takes
    without building a Python object per value, read on the other core while the planner
    converts the previous result.

    It sees what is committed, not the session's own uncommitted writes: `_load` only
    sends it statements over tables the session's transaction has not written (see
    `_written_tables`), and reads through the session first, so the session's snapshot is
    never newer than the reader's. If another connection commits between the two, the
    session's next write fails (SQLite refuses to upgrade a stale WAL snapshot,
    SQLITE_BUSY_SNAPSHOT), so a persisted plan never mixes snapshots. The reader's
    connections all read one snapshot (`planner_reader._connections`)."""

    def __init__(self, path: str, dialect: Any) -> None:
        self.dialect = dialect
        self.dir = tempfile.mkdtemp(prefix="carecollect-plan-", dir=_scratch())
        script = os.path.join(os.path.dirname(__file__), "planner_reader.py")
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, no shell
            [sys.executable, "-I", script, os.path.abspath(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.sent: list[tuple[Any, str]] = []  # submitted, not yet answered, in order
        self.count = 0
        self.failed = False  # after an error its answers are out of step: not used again

    @classmethod
    def open(cls, conn: Connection, rows: int) -> _ArrowReader | None:
        """A reader for the session's SQLite file, or None (PostgreSQL, in-memory or URI
        databases, an organization under `ARROW_MIN_GUARANTORS`, where starting the
        process costs more than it saves, or switched off with `ARROW_READS`)."""
        url = conn.engine.url
        if not ARROW_READS or rows < ARROW_MIN_GUARANTORS or conn.dialect.name != "sqlite" \
                or url.query:
            return None
        path = url.database or ""
        if path in ("", ":memory:") or path.startswith("file:") or not os.path.exists(path):
            return None
        if importlib.util.find_spec("adbc_driver_sqlite") is None:
            return None
        return cls(path, conn.dialect)

    def submit(self, stmt: Any) -> None:
        try:
            sql, params = _compiled(stmt, self.dialect)
            self.count += 1
            file = os.path.join(self.dir, f"{self.count}.arrow")
            assert self.proc.stdin is not None  # noqa: S101 - opened with a pipe
            self.proc.stdin.write(json.dumps({"sql": sql, "params": params,
                                              "file": file}) + "\n")
            self.proc.stdin.flush()
        except (OSError, TypeError, ValueError) as exc:
            raise _ReaderError(str(exc)) from exc
        self.sent.append((stmt, file))

    def columns(self, stmt: Any, names: list[str]) -> list[pl.Series]:
        if not any(s is stmt for s, _ in self.sent):
            self.submit(stmt)
        first, file = self.sent.pop(0)
        if first is not stmt:
            raise _ReaderError("reads taken out of order")
        assert self.proc.stdout is not None  # noqa: S101 - opened with a pipe
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line else {"error": "the reader process ended"}
        if "error" in answer:
            raise _ReaderError(answer["error"])
        pa = importlib.import_module("pyarrow")  # a dependency of the ADBC driver
        try:
            with pa.memory_map(file) as source:
                table = pa.ipc.open_file(source).read_all()
        finally:
            os.remove(file)
        frame = pl.from_arrow(table.rename_columns(names))
        assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a table gives a frame
        return frame.get_columns()

    def close(self) -> None:
        if self.failed:  # what is left in it is not wanted
            self.proc.kill()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write("\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def _scratch() -> str | None:
    """Where the reader's result files go: /dev/shm (memory) when it has room for a
    million-account plan's columns (containers often give it 64 MB), else the default
    temporary directory."""
    try:
        room = os.statvfs("/dev/shm")  # noqa: S108 - a fixed system path, private names
    except OSError:
        return None
    return "/dev/shm" if room.f_bavail * room.f_frsize >= 2 << 30 else None  # noqa: S108


def _read_all(conn: Connection, reader: _ArrowReader | None, written: frozenset[str],
              specs: dict[str, tuple[Any, dict[str, Any]]]) -> dict[str, pl.DataFrame]:
    """Every read of `specs`: those the reader may take are all sent to it first (it
    works through them while the frames are built here), the others through `conn`."""
    mine = [name for name, (stmt, _schema) in specs.items()
            if reader is not None and not reader.failed and not (_tables_of(stmt) & written)]
    try:
        for name in mine:
            assert reader is not None  # noqa: S101 - mine is empty without one
            if not any(sent is specs[name][0] for sent, _file in reader.sent):
                reader.submit(specs[name][0])
        out = {}
        for name, (stmt, schema) in specs.items():
            if name in mine:
                assert reader is not None  # noqa: S101 - as above
                out[name] = _frame(reader, stmt, schema)
        return out | {name: _frame(conn, stmt, schema) for name, (stmt, schema)
                      in specs.items() if name not in mine}
    except _ReaderError as exc:
        log.warning("outreach.plan.reader_failed", error=str(exc))
        assert reader is not None  # noqa: S101 - only the reader raises it
        reader.failed = True
        return {name: _frame(conn, stmt, schema) for name, (stmt, schema) in specs.items()}


def _compiled(stmt: Any, dialect: Any) -> tuple[str, list[Any]]:
    """`stmt` as SQLite SQL with positional parameters, each bound value processed by its
    column type (UUIDs as 32 hex digits, timestamps as stored UTC text) as SQLAlchemy
    would for the session's connection."""
    compiled = stmt.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string or compiled.positiontup is None:
        raise ValueError("statement needs SQLAlchemy's own execution")
    given = compiled.construct_params()
    params = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        value = given[name]
        params.append(process(value) if process is not None else value)
    return compiled.string, params


def _written_tables(session: Session) -> frozenset[str] | None:
    """Tables the session's transaction has written, as far as known: empty when it has
    changed no row since it began (SQLite's change counter, noted at BEGIN by
    `_note_changes`), None when it has or when that is unknown."""
    raw = session.connection().connection.dbapi_connection  # begins the transaction
    known = session.info.get(_CHANGES)
    transaction = session.get_transaction()
    if known is None or transaction is None:
        return None
    root, raw_id, changes = known
    current = getattr(raw, "total_changes", None)
    if root is not transaction or raw_id != id(raw) or current != changes:
        return None
    return frozenset()


_CHANGES = "outreach.planner.changes_at_begin"


@event.listens_for(Session, "after_begin")
def _note_changes(session: Session, transaction: Any, connection: Connection) -> None:
    """Note SQLite's change counter when a session's (outermost) transaction begins."""
    if connection.dialect.name != "sqlite" or transaction.parent is not None:
        return
    raw = connection.connection.dbapi_connection
    session.info[_CHANGES] = (transaction, id(raw), getattr(raw, "total_changes", None))


@dataclasses.dataclass
class _Facts:
    due: pl.DataFrame
    points: pl.DataFrame
    consents: pl.DataFrame
    revokes: pl.DataFrame
    flags: pl.DataFrame
    confidential: pl.DataFrame
    designations: pl.DataFrame
    signals: pl.DataFrame
    balances: pl.DataFrame
    events: pl.DataFrame


def _load(session: Session, organization_id: uuid.UUID, at: dt.datetime,
          fallback_state: str, fallback_tz: str,
          written: frozenset[str] | None = None) -> _Facts:
    """Read the plan's facts. `written`: the tables this transaction has written (None:
    unknown, or some rows written; see `_written_tables`); the reads of other tables go
    through an `_ArrowReader` (committed data, SQLite), the rest through the session."""
    conn = session.connection()
    # Through the session first: its snapshot is then never newer than the reader's.
    guarantors = conn.execute(select(func.count()).select_from(Guarantor).where(
        Guarantor.organization_id == organization_id)).scalar_one()
    reader = _ArrowReader.open(conn, guarantors) if written is not None else None
    try:
        return _load_facts(conn, reader, written or frozenset(), guarantors,
                           organization_id, at, fallback_state, fallback_tz)
    finally:
        if reader is not None:
            reader.close()


def _load_facts(conn: Connection, reader: _ArrowReader | None, written: frozenset[str],
                guarantors: int, organization_id: uuid.UUID, at: dt.datetime,
                fallback_state: str, fallback_tz: str) -> _Facts:
    narrow = False

    def read(stmt: Any, schema: dict[str, Any]) -> pl.DataFrame:
        # The due-id temporary tables of a narrow read live in the session's connection.
        if reader is not None and not reader.failed and not narrow \
                and not (_tables_of(stmt) & written):
            try:
                return _frame(reader, stmt, schema)
            except _ReaderError as exc:
                log.warning("outreach.plan.reader_failed", error=str(exc))
                reader.failed = True
        return _frame(conn, stmt, schema)

    d = conn.dialect.name
    u = functools_partial_uuid(d)
    e = CampaignEnrollment
    due_filter = and_(e.organization_id == organization_id, e.status == "active",
                      e.next_due_at <= at)
    due_stmt = (
        select(u(e.id), u(e.account_id), u(e.guarantor_id), u(e.campaign_id), e.next_step,
               e.cohort, e.variant, e.enrolled_at,
               func.coalesce(Guarantor.state, fallback_state),
               func.coalesce(Guarantor.mailing_tz, fallback_tz),
               cast(Guarantor.other_known_tz, String), Guarantor.city_is_nyc,
               Guarantor.preferred_language)
        .join(Guarantor, Guarantor.id == e.guarantor_id)
        .where(due_filter))

    def gin(column: Any) -> Any:
        return column.in_(due_g) if narrow else true()

    def ain(column: Any) -> Any:
        return column.in_(due_a) if narrow else true()

    def build_specs() -> dict[str, tuple[Any, dict[str, Any]]]:
        """The column reads after the due enrolments (wide or narrow as `narrow` is
        when called)."""
        specs: dict[str, tuple[Any, dict[str, Any]]] = {}
        specs["points"] = (select(
            u(ContactPoint.id), u(ContactPoint.guarantor_id), ContactPoint.kind,
            ContactPoint.line_type, cast(ContactPoint.area_code_tzs, String),
            ContactPoint.address_tz, ContactPoint.verified, ContactPoint.is_primary,
            ContactPoint.owner, ContactPoint.employer_provided)
            .where(ContactPoint.organization_id == organization_id,
                   ContactPoint.active.is_(True), gin(ContactPoint.guarantor_id)), {
            "cp_id": pl.String, "guarantor_id": pl.String, "kind": pl.String,
            "line_type": pl.String, "area_code_tzs": pl.String, "address_tz": pl.String,
            "verified": pl.Boolean, "is_primary": pl.Boolean, "owner": pl.String,
            "employer_provided": pl.Boolean})

        specs["consents"] = (select(
            u(Consent.guarantor_id), u(Consent.contact_point_id), Consent.kind,
            func.max(Consent.granted_at))
            .where(Consent.organization_id == organization_id, Consent.granted_at <= at,
                   gin(Consent.guarantor_id))
            .group_by(Consent.guarantor_id, Consent.contact_point_id, Consent.kind), {
            "guarantor_id": pl.String, "cp_id": pl.String, "kind": pl.String,
            "at": pl.Datetime("us")})

        revocations = select(
            u(Revocation.guarantor_id), u(Revocation.contact_point_id),
            Revocation.channel.label("channel"), func.max(Revocation.received_at)).where(
            Revocation.organization_id == organization_id, Revocation.received_at <= at,
            gin(Revocation.guarantor_id)).group_by(
            Revocation.guarantor_id, Revocation.contact_point_id, Revocation.channel)
        opt_outs = select(
            u(MediumOptOut.guarantor_id), u(MediumOptOut.contact_point_id),
            MediumOptOut.medium.label("channel"), func.max(MediumOptOut.received_at)).where(
            MediumOptOut.organization_id == organization_id, MediumOptOut.received_at <= at,
            gin(MediumOptOut.guarantor_id)).group_by(
            MediumOptOut.guarantor_id, MediumOptOut.contact_point_id, MediumOptOut.medium)
        revoke_schema = {"guarantor_id": pl.String, "cp_id": pl.String, "channel": pl.String,
                         "at": pl.Datetime("us")}
        specs["revocations"] = (revocations, revoke_schema)
        specs["opt_outs"] = (opt_outs, revoke_schema)

        specs["flags"] = (select(u(Flag.guarantor_id), Flag.kind, func.min(Flag.raised_at))
                       .where(Flag.organization_id == organization_id, Flag.raised_at <= at,
                              or_(Flag.cleared_at.is_(None), Flag.cleared_at > at),
                              gin(Flag.guarantor_id))
                       .group_by(Flag.guarantor_id, Flag.kind),
                       {"guarantor_id": pl.String, "kind": pl.String, "at": pl.Datetime("us")})

        q = ConfidentialCommunicationRequest
        specs["confidential"] = (select(
            u(q.guarantor_id), cast(q.allowed_channels, String),
            cast(q.allowed_contact_point_ids, String))
            .where(q.organization_id == organization_id, q.received_at <= at,
                   or_(q.withdrawn_at.is_(None), q.withdrawn_at > at),
                   gin(q.guarantor_id)), {
            "guarantor_id": pl.String, "allowed_channels": pl.String, "allowed_cps": pl.String})

        i = InconvenientDesignation
        specs["designations"] = (select(u(i.guarantor_id), i.kind, i.value).where(
            i.organization_id == organization_id, i.designated_at <= at,
            or_(i.revoked_at.is_(None), i.revoked_at > at), gin(i.guarantor_id)), {
            "guarantor_id": pl.String, "kind": pl.String, "value": pl.String})

        specs["signals"] = (select(u(OutreachSignal.account_id), OutreachSignal.kind,
                                      func.max(OutreachSignal.occurred_at))
                         .where(OutreachSignal.organization_id == organization_id,
                                OutreachSignal.occurred_at <= at,
                                ain(OutreachSignal.account_id))
                         .group_by(OutreachSignal.account_id, OutreachSignal.kind),
                         {"account_id": pl.String, "kind": pl.String, "at": pl.Datetime("us")})

        specs["balances"] = (select(u(LedgerEntry.account_id),
                                       func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
                          .where(LedgerEntry.organization_id == organization_id,
                                 ain(LedgerEntry.account_id))
                          .group_by(LedgerEntry.account_id),
                          {"account_id": pl.String, "balance_cents": pl.Int64})

        ev = ContactEvent
        specs["events"] = (select(
            u(ev.guarantor_id), ev.occurred_at, ev.channel, ev.direction, ev.outcome, ev.dialer,
            cast(ev.account_ids, String), func.coalesce(ContactPoint.kind, literal("")))
            .join(ContactPoint, ContactPoint.id == ev.contact_point_id, isouter=True)
            .where(ev.organization_id == organization_id,
                   ev.occurred_at >= at - dt.timedelta(days=HISTORY_DAYS), ev.occurred_at <= at,
                   gin(ev.guarantor_id)), {
            "guarantor_id": pl.String, "at": pl.Datetime("us"), "channel": pl.String,
            "direction": pl.String, "outcome": pl.String, "dialer": pl.String,
            "account_ids": pl.String, "cp_kind": pl.String})
        return specs

    x = OutreachExclusion
    excl_stmt = select(u(x.account_id), u(x.campaign_id)).where(
        x.organization_id == organization_id, x.excluded_at <= at, x.lifted_at.is_(None),
        or_(x.until.is_(None), x.until > at))
    # With a reader, when the due enrolments (counted on their index) make a wide plan
    # likely, every read is sent to it now: it reads them while the due frame is built.
    ahead = None
    if reader is not None and not reader.failed:
        due_rows = conn.execute(select(func.count()).select_from(e).where(due_filter)) \
            .scalar_one()
        if due_rows >= WHOLE_ORG_SHARE * guarantors:
            ahead = build_specs()  # wide: `narrow` is False until decided below
            try:
                for stmt in [due_stmt, excl_stmt] + [v[0] for v in ahead.values()]:
                    if not (_tables_of(stmt) & written):
                        reader.submit(stmt)
            except _ReaderError as exc:
                log.warning("outreach.plan.reader_failed", error=str(exc))
                reader.failed, ahead = True, None
    due = read(due_stmt, {
        "enrollment_id": pl.String, "account_id": pl.String, "guarantor_id": pl.String,
        "campaign_id": pl.String, "step": pl.Int64, "cohort": pl.String,
        "variant": pl.String, "enrolled_at": pl.Datetime("us"), "state": pl.String,
        "mailing_tz": pl.String, "other_known_tz": pl.String, "city_is_nyc": pl.Boolean,
        "language": pl.String})
    exclusions = read(excl_stmt, {"account_id": pl.String, "campaign_id": pl.String})
    # An exclusion without a campaign covers every campaign of the account.
    everywhere = exclusions.filter(pl.col("campaign_id").is_null()).select("account_id")
    one = exclusions.filter(pl.col("campaign_id").is_not_null())
    due = due.join(everywhere, on="account_id", how="anti").join(
        one, on=["account_id", "campaign_id"], how="anti")
    # When most of the organization's guarantors are due (a first run, a benchmark), the
    # reads below select the organization's rows and the frames are semi-joined to the due
    # ids in Polars: cheaper than SQLite probing the due-id table for every row (~30 % of
    # those reads' CPU). Otherwise each read is restricted in SQL.
    narrow = due.get_column("guarantor_id").n_unique() < WHOLE_ORG_SHARE * guarantors
    if narrow:
        if ahead is not None and reader is not None:
            reader.failed = True  # what it was sent ahead are the wide reads
        due_g, due_a, temporary = _due_sets(conn, due_filter)
    else:
        temporary = []
    specs = ahead if ahead is not None and not narrow else build_specs()

    got = _read_all(conn, None if narrow else reader, written, specs)
    points, consents, flags = got["points"], got["consents"], got["flags"]
    revokes = pl.concat([got["revocations"], got["opt_outs"]])
    confidential, designations = got["confidential"], got["designations"]
    signals, balances, events = got["signals"], got["balances"], got["events"]
    for table in temporary:
        table.drop(conn)
    if not narrow:
        g = due.select("guarantor_id").unique()
        a = due.select("account_id").unique()

        def only_due(frame: pl.DataFrame, key: str = "guarantor_id") -> pl.DataFrame:
            return frame.join(g if key == "guarantor_id" else a, on=key, how="semi")

        points, consents, revokes, flags = (only_due(points), only_due(consents),
                                            only_due(revokes), only_due(flags))
        confidential, designations, events = (only_due(confidential), only_due(designations),
                                              only_due(events))
        signals, balances = only_due(signals, "account_id"), only_due(balances, "account_id")
    return _Facts(due, points, consents, revokes, flags, confidential, designations, signals,
                  balances, events)


def _tables_of(stmt: Any) -> set[str]:
    return {t.name for t in find_tables(stmt, include_joins=True, include_aliases=True)
            if isinstance(t, Table)}


def _due_sets(conn: Connection, due_filter: Any) -> tuple[Any, Any, list[Table]]:
    """The due enrollments' guarantor ids and account ids, each stored once in a temporary
    table keyed by id for this transaction, as sub-selects for the column reads (which
    otherwise each re-run the due-enrollment query and build its set again)."""
    e = CampaignEnrollment
    suffix = uuid.uuid4().hex[:12]
    meta = MetaData()
    tables = []
    for name, column in (("plan_due_g", e.guarantor_id), ("plan_due_a", e.account_id)):
        table = Table(f"{name}_{suffix}", meta, Column("id", Uuid(), primary_key=True),
                      prefixes=["TEMPORARY"], sqlite_with_rowid=False,
                      postgresql_on_commit="DROP")
        table.create(conn)
        conn.execute(insert(table).from_select(
            ["id"], select(column).where(due_filter, column.is_not(None)).distinct()))
        tables.append(table)
    return select(tables[0].c.id), select(tables[1].c.id), tables


def functools_partial_uuid(dialect: str) -> Any:
    return lambda column: _uuid_text(column, dialect)


# --------------------------------------------------------------------------- planning
def _meta(session: Session, organization_id: uuid.UUID) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per campaign step: channels, hour, conditions, stop rules; per variant and channel:
    the template), as small frames to join."""
    campaigns = {c.id: c for c in session.scalars(
        select(Campaign).where(Campaign.organization_id == organization_id))}
    steps = list(session.scalars(select(CampaignStep).where(
        CampaignStep.organization_id == organization_id)))
    count: dict[uuid.UUID, int] = {}
    waits: dict[tuple[uuid.UUID, int], int] = {}
    for s in steps:
        count[s.campaign_id] = max(count.get(s.campaign_id, 0), s.position + 1)
        waits[(s.campaign_id, s.position)] = s.wait_days
    meta, templates = [], []
    for s in steps:
        c = campaigns[s.campaign_id]
        meta.append({
            "campaign_id": str(s.campaign_id), "step": s.position,
            "campaign_key": c.key, "channels": list(s.channels), "send_hour": s.send_hour,
            "next_wait": waits.get((s.campaign_id, s.position + 1)),
            "n_steps": count[s.campaign_id], "stop_on": list(c.stop_on),
            "requires": list(s.condition.get("requires", [])),
            "unless": list(s.condition.get("unless", []))})
        for rank, variant in enumerate(s.variants):
            for channel, template_id in variant.get("templates", {}).items():
                templates.append({"campaign_id": str(s.campaign_id), "step": s.position,
                                  "variant": str(variant.get("name")), "rank": rank,
                                  "channel": channel, "template_id": template_id})
    strs = pl.List(pl.String)
    return (pl.DataFrame(meta, schema={
        "campaign_id": pl.String, "step": pl.Int64, "campaign_key": pl.String,
        "channels": strs, "send_hour": pl.Int64, "next_wait": pl.Int64, "n_steps": pl.Int64,
        "stop_on": strs, "requires": strs, "unless": strs}),
        pl.DataFrame(templates, schema={
            "campaign_id": pl.String, "step": pl.Int64, "variant": pl.String,
            "rank": pl.Int64, "channel": pl.String, "template_id": pl.String}))


def _proposed_times(due: pl.DataFrame, at: dt.datetime) -> pl.DataFrame:
    """The step's local send hour today in the mailing zone, or `at` if that has passed.
    Computed once per (zone, hour) with zoneinfo, so DST days get the right instant."""
    pairs = due.select("mailing_tz", "send_hour").unique()
    rows = []
    for zone, hour in pairs.iter_rows():
        name = zone if zone and tz.is_valid_zone(zone) else "UTC"
        target = tz.at_local(tz.local_date(at, name), dt.time(int(hour)), name)
        rows.append({"mailing_tz": zone, "send_hour": hour,
                     "proposed_at": max(target, at).astimezone(dt.UTC)})
    table = pl.DataFrame(rows, schema={"mailing_tz": pl.String, "send_hour": pl.Int64,
                                       "proposed_at": UTC_DT})
    return due.join(table, on=["mailing_tz", "send_hour"], how="left", nulls_equal=True)


def _idempotency_keys(frame: pl.DataFrame, day: dt.date) -> pl.Series:
    suffix = f"|{day.isoformat()}"
    keys = [hashlib.sha256(f"{a}|{c}|{s}{suffix}".encode()).hexdigest()[:48]
            for a, c, s in frame.select("account_id", "campaign_id", "step").iter_rows()]
    return pl.Series("idempotency_key", keys, dtype=pl.String)


def _best_points(points: pl.DataFrame) -> pl.DataFrame:
    """Per guarantor and kind, the point to use: the debtor's own, primary, verified."""
    ranked = points.with_columns((pl.col("owner") == "debtor").alias("own")).sort(
        ["guarantor_id", "kind", "own", "is_primary", "verified", "cp_id"],
        descending=[False, False, True, True, True, False])
    return ranked.unique(["guarantor_id", "kind"], keep="first", maintain_order=True).drop(
        "own")


_EMPTY = pl.lit([], dtype=pl.List(pl.String))


def _add(reasons: pl.Expr, tried: pl.Expr, channel: pl.Expr) -> list[pl.Expr]:
    """Append `reasons` (a list column) to `reasons` and "<channel>:<a+b>" to `tried`."""
    return [
        pl.concat_list(pl.col("reasons"), reasons).alias("reasons"),
        pl.when(tried.list.len() > 0).then(pl.concat_list(
            pl.col("tried"), pl.concat_str(channel, pl.lit(":"), tried.list.join("+"))))
        .otherwise(pl.col("tried")).alias("tried"),
    ]


_STORED = object()  # build_plan's default overlay: the organization's stored one


def build_plan(session: Session, *, organization_id: uuid.UUID, at: dt.datetime,
               horizon: dt.timedelta = DEFAULT_HORIZON, profile: str = "strict",
               overlay: OrgOverlay | object | None = _STORED,
               written: frozenset[str] | None = None) -> Plan:
    """Decide tonight's step for every due enrollment (reads only; see `persist_plan`).

    `overlay`: the organization's compliance overlay (default: its stored one, read with
    `compliance.overlay_settings.overlay_for`; None: no overlay), applied by
    `planner_overlay` around the batch-path calls. `written`: the tables the session's
    transaction has written, when the caller knows them exactly (`plan_and_persist` after
    enrolling); by default found out from SQLite's change counter (see `_load`)."""
    import time

    clock = time.perf_counter()
    timings: dict[str, float] = {}
    org = session.get(Organization, organization_id)
    if org is None:
        raise LookupError("no such organization")
    org_overlay = overlay_for(session, organization_id=organization_id) \
        if overlay is _STORED else overlay
    if org_overlay is not None and not isinstance(org_overlay, OrgOverlay):
        raise TypeError("overlay must be an OrgOverlay or None")
    if written is None:
        written = _written_tables(session)
    facts = _load(session, organization_id, at, org.provider_license_state, org.timezone,
                  written)
    timings["load_s"] = time.perf_counter() - clock
    meta, variant_templates = _meta(session, organization_id)
    st = facts.due.join(meta, on=["campaign_id", "step"], how="inner")
    st = _proposed_times(st, at)
    st = st.join(facts.balances, on="account_id", how="left").with_columns(
        pl.col("balance_cents").fill_null(0))
    seen = facts.signals.join(st.select("account_id", "enrolled_at"), on="account_id") \
        .filter(pl.col("at") >= pl.col("enrolled_at")).group_by("account_id").agg(
        pl.col("kind").unique().alias("seen"))
    st = st.join(seen, on="account_id", how="left").with_columns(
        pl.col("seen").fill_null(_EMPTY))
    st = st.with_columns(_idempotency_keys(st, at.date()))
    stop = pl.col("seen").list.set_intersection(pl.col("stop_on")).list.len() > 0
    unmet = (pl.col("requires").list.set_difference(pl.col("seen")).list.len() > 0) | (
        pl.col("unless").list.set_intersection(pl.col("seen")).list.len() > 0)
    st = st.with_columns(
        pl.when(pl.col("balance_cents") <= 0).then(pl.lit("stopped"))
        .when(stop).then(pl.lit("stopped"))
        .when(unmet).then(pl.lit("skipped"))
        .when(pl.col("cohort") == "holdout").then(pl.lit("holdout"))
        .otherwise(None).alias("outcome"),
        pl.when(pl.col("balance_cents") <= 0).then(pl.lit(["PLAN-PAID"]))
        .when(stop).then(pl.lit(["PLAN-STOP-SIGNAL"]))
        .when(unmet).then(pl.lit(["PLAN-STEP-CONDITION"]))
        .otherwise(_EMPTY).alias("reasons"),
        _EMPTY.alias("tried"), pl.lit(None, pl.String).alias("channel"),
        pl.lit(None, pl.String).alias("cp_id"), pl.lit(False).alias("designation_moved"))
    st = st.with_columns(pl.when(pl.col("outcome") == "holdout").then(pl.col("proposed_at"))
                         .otherwise(None).cast(UTC_DT).alias("scheduled_for"))
    best = _best_points(facts.points)
    conf = facts.confidential.group_by("guarantor_id").agg(
        pl.col("allowed_channels").last(), pl.col("allowed_cps").last()).with_columns(
        pl.col("allowed_channels").str.json_decode(pl.List(pl.String)),
        pl.col("allowed_cps").str.json_decode(pl.List(pl.String)))
    work = facts.designations.filter((pl.col("kind") == "place") & (pl.col("value") == "work")
                                     ).select("guarantor_id").unique().with_columns(
        pl.lit(True).alias("work_designated"))
    timed = facts.designations.filter(pl.col("kind").is_in(["time", "day"]))
    timed_by_g: dict[str, list[tuple[str, str]]] = {}
    for g, k, v in timed.iter_rows():
        timed_by_g.setdefault(g, []).append((k, v))
    flag_kinds = facts.flags.group_by("guarantor_id").agg(pl.col("kind").alias("flag_kinds"))
    timings["prepare_s"] = time.perf_counter() - clock - timings["load_s"]
    batch_seconds = 0.0
    max_channels = int(st.select(pl.col("channels").list.len().max()).item() or 0)
    for index in range(max_channels):
        pend = st.filter(pl.col("outcome").is_null()
                         & (pl.col("channels").list.len() > index)).with_columns(
            pl.col("channels").list.get(index).alias("try"))
        if pend.height == 0:
            break
        pend = pend.with_columns(pl.col("try").replace_strict(CP_KIND, default=None)
                                 .alias("kind")).drop("cp_id")
        pend = pend.join(best, on=["guarantor_id", "kind"], how="left")
        pend = pend.join(conf, on="guarantor_id", how="left").join(
            work, on="guarantor_id", how="left")
        ch = pl.col("try")
        conf_block = pl.col("allowed_channels").is_not_null() & (
            ~(pl.col("allowed_channels").list.contains(ch)
              | ((ch == "voicemail") & pl.col("allowed_channels").list.contains("call")))
            | ((pl.col("allowed_cps").list.len() > 0)
               & ~pl.col("allowed_cps").list.contains(pl.col("cp_id"))))
        place_block = (ch != "letter") & pl.col("employer_provided").fill_null(False) \
            & pl.col("work_designated").fill_null(False)
        pend = pend.with_columns(
            pl.concat_list(
                pl.when(pl.col("cp_id").is_null()).then(pl.lit(NO_CONTACT_POINT)),
                pl.when(pl.col("cp_id").is_not_null() & conf_block.fill_null(False))
                .then(pl.lit("HIPAA-CONF-COMM")),
                pl.when(pl.col("cp_id").is_not_null() & place_block).then(pl.lit("REGF-PLACE")),
            ).list.drop_nulls().alias("pre"))
        pend = _apply_designations(pend, timed_by_g)
        results = [pend.filter(pl.col("pre").list.len() > 0).select(
            "enrollment_id", pl.lit(None, pl.String).alias("new_outcome"),
            pl.lit(None, pl.String).alias("new_cp"), pl.lit(None, UTC_DT).alias("new_at"),
            pl.col("pre").alias("add_reasons"), pl.col("pre").alias("add_tried"), "try")]
        ready = pend.filter(pl.col("pre").list.len() == 0)
        for channel in ready.get_column("try").unique().to_list():
            sub = ready.filter(pl.col("try") == channel)
            if channel == "letter":
                results.append(_decide_letters(sub, flag_kinds))
                continue
            started = time.perf_counter()
            if applies(org_overlay, channel):
                assert org_overlay is not None  # noqa: S101 - applies() checked it
                results.append(decide_with_overlay(
                    channel, sub, org_overlay, facts.events, horizon,
                    functools.partial(_evaluate, channel, facts=facts, profile=profile)))
                batch_seconds += time.perf_counter() - started
                continue
            decisions = _evaluate(channel, sub, facts, profile)
            batch_seconds += time.perf_counter() - started
            results.append(_apply(sub, decisions, horizon))
        res = pl.concat(results, how="vertical")
        st = st.join(res, on="enrollment_id", how="left").with_columns(
            pl.coalesce("new_outcome", "outcome").alias("outcome"),
            pl.when(pl.col("new_outcome").is_not_null()).then(pl.col("try"))
            .otherwise(pl.col("channel")).alias("channel"),
            pl.coalesce("new_cp", "cp_id").alias("cp_id"),
            pl.coalesce("new_at", "scheduled_for").alias("scheduled_for"),
            *_add(pl.col("add_reasons").fill_null(_EMPTY),
                  pl.when(pl.col("new_outcome").is_null()).then(
                      pl.col("add_tried").fill_null(_EMPTY)).otherwise(_EMPTY),
                  pl.col("try"))).drop("new_outcome", "new_cp", "new_at", "add_reasons",
                                       "add_tried", "try")
    timings["batch_s"] = batch_seconds
    st = st.with_columns(
        pl.col("outcome").fill_null("blocked"),
        pl.col("reasons").list.unique().list.sort(),
        pl.col("language").fill_null("en"))
    # The variant's template for the chosen channel (first variant when the name is gone).
    named = variant_templates.select("campaign_id", "step", "variant", "channel",
                                     pl.col("template_id"))
    first = variant_templates.sort("rank").unique(["campaign_id", "step", "channel"],
                                                  keep="first", maintain_order=True).select(
        "campaign_id", "step", "channel", pl.col("template_id").alias("first_template"))
    st = st.join(named, on=["campaign_id", "step", "variant", "channel"], how="left").join(
        first, on=["campaign_id", "step", "channel"], how="left").with_columns(
        pl.when(pl.col("outcome").is_in(["send", "retime"]))
        .then(pl.coalesce("template_id", "first_template")).otherwise(None)
        .alias("template_id"))
    translated = {f"{t}|{lang}" for t, lang in default_templates()}
    st = st.with_columns(pl.when(
        (pl.col("template_id") + "|" + pl.col("language")).is_in(list(translated))
        | pl.col("template_id").is_null()).then(pl.col("language")).otherwise(pl.lit("en"))
        .alias("language"))
    frame = st.select([pl.col(k).cast(v) for k, v in _COLUMNS.items()])
    timings["total_s"] = time.perf_counter() - clock
    return Plan(organization_id, at, frame, timings)


_COLUMNS: dict[str, Any] = {
    "enrollment_id": pl.String, "account_id": pl.String, "guarantor_id": pl.String,
    "campaign_id": pl.String, "campaign_key": pl.String, "step": pl.Int64,
    "n_steps": pl.Int64, "next_wait": pl.Int64, "cohort": pl.String, "variant": pl.String,
    "outcome": pl.String, "channel": pl.String, "cp_id": pl.String,
    "template_id": pl.String, "language": pl.String, "proposed_at": UTC_DT,
    "scheduled_for": UTC_DT, "reasons": pl.List(pl.String), "tried": pl.List(pl.String),
    "idempotency_key": pl.String, "mailing_tz": pl.String,
}


def _apply_designations(pend: pl.DataFrame,
                        timed: dict[str, list[tuple[str, str]]]) -> pl.DataFrame:
    """REGF-TIME-DESIGNATED: move the proposed local time past designated windows and days
    (only rows whose guarantor designated any; letters are exempt)."""
    if not timed:
        return pend
    mask = pl.col("guarantor_id").is_in(list(timed)) & (pl.col("try") != "letter") \
        & (pl.col("pre").list.len() == 0)
    subset = pend.filter(mask)
    if subset.height == 0:
        return pend
    moved: list[dict[str, Any]] = []
    for eid, g, zone, proposed in subset.select("enrollment_id", "guarantor_id",
                                                "mailing_tz", "proposed_at").iter_rows():
        local = tz.local(proposed, zone)
        if not any(designation_blocks(k, v, local) for k, v in timed[g]):
            continue
        clear = next_clear(timed[g], local)
        moved.append({"enrollment_id": eid,
                      "moved_at": None if clear is None else clear.astimezone(dt.UTC),
                      "blocked": clear is None})
    if not moved:
        return pend
    changes = pl.DataFrame(moved, schema={"enrollment_id": pl.String, "moved_at": UTC_DT,
                                          "blocked": pl.Boolean})
    pend = pend.join(changes, on="enrollment_id", how="left")
    return pend.with_columns(
        pl.coalesce("moved_at", "proposed_at").alias("proposed_at"),
        (pl.col("moved_at").is_not_null() | pl.col("designation_moved"))
        .alias("designation_moved"),
        pl.when(pl.col("blocked").fill_null(False))
        .then(pl.concat_list("pre", pl.lit(["REGF-TIME-DESIGNATED"])))
        .otherwise(pl.col("pre")).alias("pre")).drop("moved_at", "blocked")


_RESULT = ["enrollment_id", "new_outcome", "new_cp", "new_at", "add_reasons", "add_tried",
           "try"]


def _decide_letters(sub: pl.DataFrame, flag_kinds: pl.DataFrame) -> pl.DataFrame:
    """Letters: no time window (PLAT-TIME-CHANNELS); the conduct flags still bind."""
    rules = {"bankruptcy": ["PLAT-BANKRUPTCY"], "cease_requested": ["REGF-CEASE"],
             "attorney_represented": ["REGF-ATTY"],
             "deceased": ["HIPAA-PERSONAL-REP", "PLAT-DECEASED"]}
    sub = sub.join(flag_kinds, on="guarantor_id", how="left").with_columns(
        pl.col("flag_kinds").fill_null(_EMPTY))
    found = pl.concat_list([
        pl.when(pl.col("flag_kinds").list.contains(kind)).then(pl.lit(cites))
        .otherwise(_EMPTY) for kind, cites in rules.items()])
    sub = sub.with_columns(found.alias("found"))
    blocked = pl.col("found").list.len() > 0
    return sub.select(
        "enrollment_id",
        pl.when(blocked).then(None).otherwise(pl.lit("send")).cast(pl.String)
        .alias("new_outcome"),
        pl.when(blocked).then(None).otherwise(pl.col("cp_id")).alias("new_cp"),
        pl.when(blocked).then(None).otherwise(pl.col("proposed_at")).cast(UTC_DT)
        .alias("new_at"),
        pl.col("found").alias("add_reasons"), pl.col("found").alias("add_tried"), "try")


def _latest_revoke(revokes: pl.DataFrame, base: pl.DataFrame, channel: str) -> pl.DataFrame:
    """Per plan row: the latest revocation / opt-out covering `channel`'s medium on the
    chosen point or on the whole medium (REGF-MEDIUM-OPTOUT, TCPA-REVOKE-ANYMEANS), in the
    batch path's columns."""
    medium = {"voicemail": "call"}.get(channel, channel)
    covering = [medium, "all"] + (["voicemail"] if medium == "call" else [])
    rows = revokes.filter(pl.col("channel").is_in(covering)).join(
        base.select("account_id", "guarantor_id", pl.col("cp_id").alias("chosen")),
        on="guarantor_id")
    rows = rows.filter(pl.col("cp_id").is_null() | (pl.col("cp_id") == pl.col("chosen")))
    return rows.sort("at").group_by("account_id").agg(
        pl.col("at").last().alias("revoke_at"),
        pl.col("channel").last().replace({"voicemail": "call"}).alias("revoke_channel"),
    ).with_columns(pl.lit("email" if channel == "email" else "phone").alias("revoke_cp"))


def _evaluate(channel: str, sub: pl.DataFrame, facts: _Facts, profile: str) -> pl.DataFrame:
    """One batch-path call for every row proposing `channel` tonight (keyed by enrollment)."""
    base = sub.select(
        pl.col("enrollment_id").alias("account_id"), "guarantor_id",
        pl.col("account_id").alias("real_account_id"), "state",
        pl.col("city_is_nyc").fill_null(False), "mailing_tz", "other_known_tz", "cp_id",
        "line_type", "area_code_tzs", "address_tz", pl.col("proposed_at").alias("time"))
    consents = facts.consents
    acc = base
    for column, kind in (("consent_at", "tcpa_pec"), ("email_consent_at", "email_use")):
        # TCPA consent on the phone point for phone channels; e-mail consent on the e-mail
        # point (REGF-EMAIL-PROC / STATE-NYC-ECONSENT).
        if (kind == "tcpa_pec") == (channel != "email"):
            latest = consents.filter(pl.col("kind") == kind).group_by("cp_id").agg(
                pl.col("at").max().alias(column))
            acc = acc.join(latest, on="cp_id", how="left")
        else:
            acc = acc.with_columns(pl.lit(None, UTC_DT).alias(column))
    extra = consents.filter(pl.col("kind") == "direct_prior_consent_extra_calls").group_by(
        "guarantor_id").agg(pl.col("at").max().alias("extra_calls_consent_at"))
    acc = acc.join(extra, on="guarantor_id", how="left")
    acc = acc.join(_latest_revoke(facts.revokes, base, channel), on="account_id", how="left")
    flags = facts.flags
    for kind, column in (("bankruptcy", "bankruptcy_at"), ("cease_requested", "cease_at"),
                         ("attorney_represented", "attorney_at")):
        acc = acc.join(flags.filter(pl.col("kind") == kind).select(
            "guarantor_id", pl.col("at").alias(column)), on="guarantor_id", how="left")
    deceased = flags.filter(pl.col("kind") == "deceased").select(
        "guarantor_id", pl.lit(True).alias("deceased"))
    acc = acc.join(deceased, on="guarantor_id", how="left").with_columns(
        pl.col("deceased").fill_null(False))
    other = pl.col("other_known_tz").str.json_decode(pl.List(pl.String)).list.first()
    acc = acc.with_columns(
        pl.lit(profile).alias("profile"), pl.lit("").alias("zip"),
        pl.when(pl.col("address_tz").is_not_null()
                & (pl.col("address_tz") != pl.col("mailing_tz")))
        .then(pl.col("address_tz")).otherwise(other).alias("other_tz"),
        pl.lit("").alias("phone_value"),
        pl.col("area_code_tzs").str.json_decode(pl.List(pl.String)).list.join(",")
        .replace("", None).alias("area_code_tz"),
        pl.lit(None, pl.Date).alias("rnd_date"), pl.lit(None, pl.String).alias("rnd_result"),
        pl.lit(None, UTC_DT).alias("reconsent_at"),
        pl.lit(None, pl.String).alias("nsa_status"),
        pl.lit("call" if channel == "voicemail" else channel).alias("channel"),
        pl.lit("manual" if channel in ("call", "voicemail") else None, pl.String)
        .alias("dialer"))
    events = _events_for(facts.events, base)
    return evaluate_portfolio(acc, events).rename({"account_id": "enrollment_id"})


def _events_for(events: pl.DataFrame, base: pl.DataFrame) -> pl.DataFrame:
    """Contact history in batch columns, keyed by the plan row (enrollment) id."""
    ev = events.join(base.select("guarantor_id", "account_id", "real_account_id"),
                     on="guarantor_id")
    about = (pl.col("account_ids").is_null() | (pl.col("account_ids") == "[]")
             | pl.col("account_ids").str.contains(pl.col("real_account_id"), literal=True))
    cp = pl.when(pl.col("cp_kind") == "phone").then(pl.lit("phone")).when(
        pl.col("cp_kind") == "email").then(pl.lit("email")).when(
        pl.col("cp_kind") == "postal").then(pl.lit("mail")).when(
        pl.col("channel").is_in(["call", "sms", "voicemail"])).then(pl.lit("phone")).when(
        pl.col("channel") == "email").then(pl.lit("email")).otherwise(pl.lit("mail"))
    return ev.select("account_id", "at", "channel", "direction", "outcome", "dialer",
                     about.alias("about_debt"), cp.alias("cp"))


def _apply(sub: pl.DataFrame, decisions: pl.DataFrame,
           horizon: dt.timedelta) -> pl.DataFrame:
    """Allowed -> send; blocked with a next allowed instant within the horizon -> retime;
    otherwise the reasons are kept and the next channel is tried."""
    d = sub.select("enrollment_id", "cp_id", "proposed_at", "designation_moved", "try").join(
        decisions, on="enrollment_id")
    allowed = pl.col("decision") != "block"
    soon = pl.col("next_allowed_at").is_not_null() & (
        pl.col("next_allowed_at") - pl.col("proposed_at") <= pl.lit(horizon))
    outcome = pl.when(allowed & pl.col("designation_moved")).then(pl.lit("retime")) \
        .when(allowed).then(pl.lit("send")).when(soon).then(pl.lit("retime")).otherwise(None)
    reasons = pl.col("reasons").fill_null(_EMPTY)
    return d.select(
        "enrollment_id", outcome.alias("new_outcome"),
        pl.when(allowed | soon).then(pl.col("cp_id")).otherwise(None).alias("new_cp"),
        pl.when(allowed).then(pl.col("proposed_at")).when(soon)
        .then(pl.col("next_allowed_at")).otherwise(None).cast(UTC_DT).alias("new_at"),
        pl.when(allowed & pl.col("designation_moved"))
        .then(pl.concat_list(reasons, pl.lit(["REGF-TIME-DESIGNATED"])))
        .otherwise(reasons).alias("add_reasons"),
        reasons.alias("add_tried"), "try")


# --------------------------------------------------------------------------- persisting
def persist_plan(session: Session, plan: Plan, *, actor: Actor = ACTOR,
                 chunk: int = 5_000) -> dict[str, int]:
    """Create the attempts (idempotently), their delivery jobs and audit events, and
    advance the enrollments, in the caller's transaction. Returns counts."""
    org_id = plan.organization_id
    frame = plan.frame
    created = 0
    sendable = frame.filter(pl.col("outcome").is_in(["send", "retime"]))
    existing: set[str] = set()
    keys = sendable.get_column("idempotency_key").to_list()
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        existing.update(session.scalars(select(OutreachAttempt.idempotency_key).where(
            OutreachAttempt.organization_id == org_id,
            OutreachAttempt.idempotency_key.in_(part))))
    now = plan.at
    attempts: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for r in sendable.iter_rows(named=True):
        if r["idempotency_key"] in existing:
            continue
        attempt_id = uuid7()
        attempts.append({
            "id": attempt_id, "organization_id": org_id,
            "guarantor_id": uuid.UUID(r["guarantor_id"]),
            "account_id": uuid.UUID(r["account_id"]),
            "contact_point_id": uuid.UUID(r["cp_id"]) if r["cp_id"] else None,
            "channel": r["channel"], "template_key": r["template_id"],
            "language": r["language"], "cadence_key": r["campaign_key"],
            "step_key": f"{r['step']}:{r['variant'] or '-'}",
            "idempotency_key": r["idempotency_key"], "state": "planned",
            "scheduled_for": r["scheduled_for"], "reasons": list(r["reasons"] or []),
            "next_allowed_at": r["scheduled_for"] if r["outcome"] == "retime" else None,
            "send_count": 0, "reconcile_count": 0,
            "details": {"planned_outcome": r["outcome"],
                        "enrollment_id": r["enrollment_id"]},
            "created_at": now, "updated_at": now})
        jobs.append({"id": uuid7(), "organization_id": org_id, "queue": DELIVER_QUEUE,
                     "kind": DELIVER_KIND, "args": {"attempt_id": str(attempt_id)},
                     "state": "available", "priority": 0, "attempt": 0, "max_attempts": 8,
                     "scheduled_at": r["scheduled_for"], "errors": [],
                     "unique_key": f"deliver:{attempt_id}", "created_at": now})
    # Plain executemany (rows as `kit.jobs.queue.enqueue_many` builds them): its one
    # multi-row VALUES statement costs ~5 ms per row to compile at this size. The unique
    # keys are new attempt ids, so enqueue_many's ON CONFLICT never applies here.
    conn = session.connection()
    for start in range(0, len(attempts), chunk):
        conn.execute(_table(OutreachAttempt).insert(), attempts[start:start + chunk])
        conn.execute(_table(Job).insert(), jobs[start:start + chunk])
    for a in attempts:
        # HIPAA-SEC-AUDIT: every outreach decision that leads to a message is recorded.
        record(session, actor=actor, action="outreach.plan",
               subject=Subject("outreach_attempt", a["id"], organization_id=org_id,
                               patient_id=a["guarantor_id"]),
               details={"channel": a["channel"], "template": a["template_key"],
                        "outcome": a["details"]["planned_outcome"]})
    created = len(attempts)
    _advance(session, plan)
    counts = plan.counts()
    record(session, actor=actor, action="outreach.decision",
           subject=Subject("organization", org_id, organization_id=org_id),
           details={"plan_at": plan.at.isoformat(), "created": created, **counts})
    return {"created": created, "already_planned": len(existing), **counts}


def _advance(session: Session, plan: Plan) -> None:
    """Move each enrollment to its next step (or retry blocked ones tomorrow)."""
    frame = plan.frame.with_columns(
        pl.coalesce(pl.col("scheduled_for"), pl.lit(plan.at).cast(UTC_DT)).alias("base"))
    table = _table(CampaignEnrollment)
    updates: list[dict[str, Any]] = []
    for r in frame.iter_rows(named=True):
        eid = uuid.UUID(r["enrollment_id"])
        outcome = r["outcome"]
        if outcome == "stopped":
            updates.append({"eid": eid, "next_step": r["step"], "next_due_at": None,
                            "status": "stopped", "status_reason": r["reasons"][0]})
        elif outcome == "blocked":
            updates.append({"eid": eid, "next_step": r["step"],
                            "next_due_at": plan.at + dt.timedelta(days=1), "status": "active",
                            "status_reason": "blocked"})
        elif r["step"] + 1 >= r["n_steps"]:
            updates.append({"eid": eid, "next_step": r["step"] + 1, "next_due_at": None,
                            "status": "completed", "status_reason": outcome})
        else:
            updates.append({"eid": eid, "next_step": r["step"] + 1,
                            "next_due_at": r["base"] + dt.timedelta(days=r["next_wait"] or 0),
                            "status": "active", "status_reason": outcome})
    if not updates:
        return
    from sqlalchemy import bindparam, update

    stmt = update(table).where(table.c.id == bindparam("eid")).values(
        next_step=bindparam("next_step"), next_due_at=bindparam("next_due_at"),
        status=bindparam("status"), status_reason=bindparam("status_reason"),
        last_planned_at=plan.at, updated_at=plan.at)
    session.connection().execute(stmt, updates)


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - declarative models map Tables
    return table


def plan_and_persist(session: Session, *, organization_id: uuid.UUID, at: dt.datetime,
                     dry_run: bool = False, enroll: bool = True,
                     horizon: dt.timedelta = DEFAULT_HORIZON) -> tuple[Plan, dict[str, int]]:
    """What the nightly job and `carecollect outreach plan` run: enroll newly eligible
    accounts, build the plan and (unless a dry run) persist it, in one transaction. A dry
    run enrolls inside a savepoint that is rolled back, so it shows what a real run would
    do and leaves nothing behind."""
    written: frozenset[str] | None = None
    if dry_run:
        savepoint = session.begin_nested()
        try:
            if enroll:
                written = _enroll_noting_writes(session, organization_id, at)
            plan = build_plan(session, organization_id=organization_id, at=at,
                              horizon=horizon, written=written)
        finally:
            savepoint.rollback()
        return plan, {"created": 0, "already_planned": 0, **plan.counts()}
    if enroll:
        written = _enroll_noting_writes(session, organization_id, at)
    plan = build_plan(session, organization_id=organization_id, at=at, horizon=horizon,
                      written=written)
    return plan, persist_plan(session, plan)


def _enroll_noting_writes(session: Session, organization_id: uuid.UUID,
                          at: dt.datetime) -> frozenset[str] | None:
    """Enroll newly eligible accounts and return the tables this transaction has written
    (None: unknown - it had written before, or a statement that is not plain DML ran), so
    that the plan reads every other table as committed data (`_ArrowReader`). While the
    transaction holds SQLite's write lock nobody else commits, so for those tables the
    committed data is exactly what the session sees."""
    from carecollect.outreach.cadence import cadence_service

    before = _written_tables(session)
    conn = session.connection()
    seen: set[str] = set()

    def note(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any,
             _many: bool) -> None:
        compiled = getattr(context, "compiled", None)
        target = getattr(compiled, "statement", None)
        if isinstance(target, Insert | Update | Delete) and isinstance(target.table, Table):
            seen.add(target.table.name)
        elif not statement.lstrip().upper().startswith(_READS):
            seen.add("*")

    event.listen(conn, "before_cursor_execute", note)
    try:
        cadence_service.enroll_eligible(session, organization_id=organization_id,
                                        actor=ACTOR, at=at)
        session.flush()  # pending ORM rows (audit events) are written while noted
    finally:
        event.remove(conn, "before_cursor_execute", note)
    if before is None or "*" in seen:
        return None
    return frozenset(seen)


_READS = ("SELECT", "SAVEPOINT", "RELEASE", "PRAGMA")


def jobs_for(session: Session, attempt_ids: Sequence[uuid.UUID]) -> list[Job]:
    """Delivery jobs of the given attempts (tests and tools)."""
    wanted = {str(a) for a in attempt_ids}
    return [j for j in session.scalars(select(Job).where(Job.kind == DELIVER_KIND))
            if j.args.get("attempt_id") in wanted]
