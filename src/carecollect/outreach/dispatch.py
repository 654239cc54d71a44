"""The dispatcher: outbox attempts to providers, exactly once in effect (ARCHITECTURE.md §6).

1. `create_attempt` (planner or staff action) inserts the attempt with its unique
   idempotency key, its delivery job and the audit event in the caller's transaction.
2. `deliver` (job `outreach.deliver`) locks the attempt and the debtor's contact-state row
   (`SELECT ... FOR UPDATE`; SQLite: `BEGIN IMMEDIATE`), rebuilds the compliance context
   from stored state, renders, re-checks compliance (a block is terminal, with its rule ids),
   checks the channel vendor's BAA (HIPAA-BAA), records the contact in history (so the
   next check under the same lock counts it), marks the attempt `sending` and commits.
3. It calls the provider, then records `sent` with the provider id. A failure that may have
   reached the provider makes the attempt `unknown`; `reconcile` asks the provider later.
   A failure that certainly did not is retried with backoff (the attempt goes back to
   `planned` and its history row stops counting: outcome `undeliverable`).

Calls are not sent by a provider: `deliver` puts a task in the staff work list
(`carecollect.channel.calls`); the outcome staff log later is what counts toward caps.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.audit.service import PendingEvent, record_many
from carecollect.channel.base import (
    ChannelError,
    ChannelRefused,
    NotSent,
    OutboundMessage,
    Provider,
    SendResult,
    SentRecord,
)
from carecollect.compliance import scenario as sc
from carecollect.compliance import zones as tz
from carecollect.compliance.engine import evaluate
from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import overlay_for
from carecollect.errors import AppError
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs import ClaimedJob, JobContext, RetryableError, Snooze, TerminalError
from carecollect.kit.jobs.queue import enqueue
from carecollect.kit.jobs.sessions import relaxed_commit, write_locked_session
from carecollect.outreach.context import (
    DebtorFacts,
    among,
    history_event,
    load_debtors,
    with_action,
)
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.org_templates import organization_template
from carecollect.outreach.outbox import CallTask, ContactState, OutreachAttempt, ReviewItem
from carecollect.outreach.ratelimit import RateLimiter
from carecollect.outreach.service import contact_history_service
from carecollect.outreach.templates import (
    Rendered,
    SurfaceContext,
    Template,
    TemplateRefused,
    default_templates,
    render,
    render_template,
)
from carecollect.tenant.models import BusinessAssociate, Organization

log = logging.getLogger("carecollect.outreach.dispatch")
ACTOR = Actor.system("outreach.dispatch")
DELIVER = "outreach.deliver"
RECONCILE = "outreach.reconcile"
QUEUE = "outreach"
DEFAULT_TEMPLATES = {
    "sms": "statement_ready_sms",
    "email": "reminder_email",
    "letter": "statement_letter",
    "call": "callback_voicemail",
    "voicemail": "callback_voicemail",
}
# Engine modifications the rendered message already satisfies by construction.
_SATISFIED_ALWAYS = {"use_neutral_display_name", "use_opaque_link"}


class BaaInactive(TerminalError):  # noqa: N818 - house style (BadInput, NotFound)
    """HIPAA-BAA (45 CFR 164.502(e)): no active business associate agreement."""

    def __init__(self, service: str) -> None:
        super().__init__(
            "baa_inactive",
            f"no active business associate agreement for the {service} vendor: "
            "PHI egress refused (record an active BAA for it in the BAA register)",
        )


@dataclass
class DispatchSettings:
    profile: str = "strict"
    overlay: OrgOverlay | None = None
    public_base_url: str = "https://carecollect.localhost"
    link_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    callback_phone: str = "+1 617 555 0100"
    contact_person: str = "the billing office"
    unsubscribe_mailto: str | None = None
    reconcile_after: timedelta = timedelta(minutes=2)
    reconcile_max: int = 6
    # Delivery jobs decided in one transaction (1: one attempt at a time, the pre-batch
    # behaviour), and the provider calls of one batch in flight at once.
    batch_size: int = 100
    send_concurrency: int = 8
    # Freeze the process's heap as it is before the first batch (modules, mappers, the
    # SDK: ~390,000 objects in a worker) out of the cyclic garbage collector; see
    # `_freeze_startup_heap`.
    freeze_startup_heap: bool = True


@dataclass
class DispatchResources:
    channels: dict[str, Provider]
    settings: DispatchSettings = field(default_factory=DispatchSettings)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    keys_cache: dict[uuid.UUID, tuple[float, OrganizationKeys]] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def send_pool(self) -> ThreadPoolExecutor:
        """The bounded thread pool a batch's provider calls run on (created on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, self.settings.send_concurrency),
                                            thread_name_prefix="outreach-send")
        return self._pool


def resources_of(ctx: JobContext) -> DispatchResources:
    res = ctx.resources.get("outreach")
    if not isinstance(res, DispatchResources):
        raise TerminalError("outreach_not_configured")
    return res


def organization_keys(ctx: JobContext, res: DispatchResources,
                      organization_id: uuid.UUID) -> OrganizationKeys:
    hit = res.keys_cache.get(organization_id)
    if hit is not None and time.monotonic() - hit[0] < 60:
        return hit[1]
    if ctx.keys is None:
        raise TerminalError("no_key_manager")
    with ctx.db.system_session() as session:
        org = session.get(Organization, organization_id)
        bits = org.blind_index_bits if org is not None else None
        keys = ctx.keys.for_organization(session, organization_id, blind_index_bits=bits)
    res.keys_cache[organization_id] = (time.monotonic(), keys)
    return keys


# -- step 1: the decision ------------------------------------------------------------------

def create_attempt(
    session: Session,
    *,
    organization_id: uuid.UUID,
    guarantor_id: uuid.UUID,
    channel: str,
    idempotency_key: str,
    contact_point_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    template_key: str | None = None,
    language: str = "en",
    scheduled_for: datetime | None = None,
    cadence_key: str | None = None,
    step_key: str | None = None,
    actor: Actor = ACTOR,
    priority: int = 0,
) -> OutreachAttempt:
    """Insert an attempt, its delivery job and the audit event in the caller's
    transaction. Idempotent: an existing attempt with the key is returned unchanged."""
    existing = session.scalar(select(OutreachAttempt).where(
        OutreachAttempt.organization_id == organization_id,
        OutreachAttempt.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    when = scheduled_for or datetime.now(tz.zone("UTC"))
    attempt = OutreachAttempt(
        id=uuid7(), organization_id=organization_id, guarantor_id=guarantor_id,
        account_id=account_id, contact_point_id=contact_point_id, channel=channel,
        template_key=template_key or DEFAULT_TEMPLATES.get(channel, "reminder_email"),
        language=language, cadence_key=cadence_key, step_key=step_key,
        idempotency_key=idempotency_key, state="planned", scheduled_for=when,
        reasons=[], details={},
    )
    session.add(attempt)
    session.flush()
    enqueue(session, DELIVER, {"attempt_id": str(attempt.id)}, queue=QUEUE,
            organization_id=organization_id, scheduled_at=when, priority=priority,
            max_attempts=8, unique_key=f"deliver:{attempt.id}")
    record(session, actor=actor, action="outreach.plan",
           subject=_subject(attempt),
           details={"channel": channel, "template": attempt.template_key})
    return attempt


def _subject(attempt: OutreachAttempt) -> Subject:
    return Subject("outreach_attempt", attempt.id, organization_id=attempt.organization_id,
                   patient_id=attempt.guarantor_id)


# -- links ---------------------------------------------------------------------------------

def opaque_token() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits, 32 url-safe characters


def unsubscribe_token(secret: bytes, attempt_id: uuid.UUID) -> str:
    mac = hmac.new(secret, b"unsubscribe:" + attempt_id.bytes, hashlib.sha256).hexdigest()[:32]
    return attempt_id.hex + mac


def parse_unsubscribe_token(secret: bytes, token: str) -> uuid.UUID | None:
    if len(token) != 64:
        return None
    try:
        attempt_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    if not hmac.compare_digest(unsubscribe_token(secret, attempt_id), token):
        return None
    return attempt_id


# -- rendering -----------------------------------------------------------------------------

class LazyVariables(Mapping[str, Any]):
    """Template variables computed (and decrypted) only when a template uses them."""

    def __init__(self, loaders: dict[str, Callable[[], Any]]) -> None:
        self._loaders = loaders
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            self._values[key] = self._loaders[key]()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __contains__(self, key: object) -> bool:
        return key in self._loaders


def _variables(session: Session, keys: OrganizationKeys, facts: DebtorFacts,
               settings: DispatchSettings, now: datetime,
               issue_link: Callable[[uuid.UUID, datetime], str] | None = None) -> LazyVariables:
    from carecollect.ledger.models import LedgerEntry

    cipher = keys.cipher()
    base = settings.public_base_url.rstrip("/")
    local_day = tz.local_date(now, facts.context.debtor.mailing_tz)

    def last4() -> str:
        if not facts.accounts:
            return "0000"
        number = cipher.open_row(facts.accounts[0], "account_number") or ""
        return number[-4:] or "0000"

    def latest_charge() -> Any:
        if not facts.accounts:
            return None
        return session.scalar(
            select(LedgerEntry).where(LedgerEntry.account_id.in_([a.id for a in facts.accounts]),
                                      LedgerEntry.kind == "charge")
            .order_by(LedgerEntry.posted_at.desc()).limit(1))

    def service_date() -> Any:
        entry = latest_charge()
        raw = cipher.open_row(entry, "service_date") if entry is not None else None
        from datetime import date

        return date.fromisoformat(raw) if raw else local_day

    def service_description() -> str:
        entry = latest_charge()
        raw = cipher.open_row(entry, "description") if entry is not None else None
        return raw or "services"

    links: list[str] = []

    def link() -> str:
        # A fresh opaque portal link per message, issued (hash stored) only when the
        # template uses it; payment_url and portal_url share it.
        if not links:
            if issue_link is not None:
                links.append(issue_link(facts.guarantor.id, now))
            else:
                from carecollect.portal.service import message_link

                links.append(message_link(session, organization_id=keys.organization_id,
                                          guarantor_id=facts.guarantor.id, now=now,
                                          base_url=base))
        return links[0]

    return LazyVariables({
        "payment_url": link,
        "portal_url": link,
        "payment_token": opaque_token,
        "callback_phone": lambda: settings.callback_phone,
        "contact_person": lambda: settings.contact_person,
        "balance_cents": lambda: facts.balance_cents,
        "statement_date": lambda: local_day,
        "due_date": lambda: local_day + timedelta(days=30),
        "account_last4": last4,
        "patient_first_name": lambda: cipher.open_row(facts.guarantor, "first_name") or "",
        "date_of_service": service_date,
        "service_description": service_description,
    })


def _consented_phone(facts: DebtorFacts, contact_point_id: uuid.UUID | None) -> bool:
    cp = facts.contact_points.get(contact_point_id) if contact_point_id else None
    if cp is None or not cp.verified:
        return False
    return any(c.contact_point == str(contact_point_id) and c.kind in ("tcpa_pec", "tcpa_pewc")
               for c in facts.context.consents)


def _unresolved_modifications(modification: str | None, rendered: Rendered,
                              channel: str) -> list[str]:
    codes = [c.strip() for c in (modification or "").split(";") if c.strip()]
    out = []
    classes = set(rendered.content_classes.values())
    for code in codes:
        if code in _SATISFIED_ALWAYS:
            continue
        if code == "append_opt_out" and rendered.includes_opt_out:
            continue
        if code == "strip_to_C0" and classes <= {"C0"}:
            continue
        if code == "strip_to_C1" and classes <= {"C0", "C1"}:
            continue
        if code == "use_neutral_subject" and rendered.content_classes.get(
                "email_subject", "C0") == "C0":
            continue
        if code == "limit_to_limited_content_message" and "lcm_required_only" in rendered.contains:
            continue
        if code == "manual_live_call_only" and channel in ("call", "voicemail"):
            continue
        out.append(code)
    return out


# -- step 2 and 3: delivery, a batch at a time ----------------------------------------------

@dataclass
class _Prepared:
    job: ClaimedJob
    attempt_id: uuid.UUID
    message: OutboundMessage
    provider: Provider
    contact_event_id: uuid.UUID | None


Outcomes = dict[uuid.UUID, BaseException | None]


def _lock_contact_states(session: Session, org_id: uuid.UUID, guarantor_ids: list[uuid.UUID],
                         now: datetime) -> dict[uuid.UUID, ContactState]:
    """Create the missing contact-state rows and lock all of them, in guarantor order, in
    one statement (two batches lock their common debtors in the same order: no deadlock)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ContactState).on_conflict_do_nothing(), [
        {"organization_id": org_id, "guarantor_id": g, "outbound_count": 0, "updated_at": now}
        for g in guarantor_ids])
    rows = session.scalars(
        select(ContactState).where(among(session, ContactState.guarantor_id, guarantor_ids))
        .order_by(ContactState.guarantor_id).with_for_update()).all()
    return {row.guarantor_id: row for row in rows}


def _lock_contact_state(session: Session, org_id: uuid.UUID, guarantor_id: uuid.UUID,
                        now: datetime) -> ContactState:
    """One debtor's contact state, locked (used by `outreach.transactional`)."""
    return _lock_contact_states(session, org_id, [guarantor_id], now)[guarantor_id]


def _finish(session: Session, attempt: OutreachAttempt, state: str, *, reasons: list[str] | None
            = None, error_code: str | None = None, outcome: str = "success",
            details: dict[str, Any] | None = None,
            audit: list[PendingEvent] | None = None) -> None:
    """Set the attempt's state and record the `outreach.decision` event (into `audit`,
    recorded together later by the caller, when given)."""
    attempt.state = state
    if reasons is not None:
        attempt.reasons = reasons
    attempt.error_code = error_code
    event = PendingEvent(ACTOR, "outreach.decision", _subject(attempt), outcome,
                         {"state": state, "reasons": list(attempt.reasons),
                          "code": error_code, **(details or {})})
    if audit is None:
        record_many(session, [event])
    else:
        audit.append(event)


def _mark_event(session: Session, event_id: uuid.UUID | None, outcome: str) -> None:
    if event_id is not None:
        session.execute(update(ContactEvent).where(ContactEvent.id == event_id)
                        .values(outcome=outcome))


def deliver(ctx: JobContext, job: ClaimedJob) -> None:
    """Job handler for `outreach.deliver` (args: attempt_id): the batch path with one job."""
    failure = deliver_batch(ctx, [job]).get(job.id)
    if failure is not None:
        raise failure


_heap_frozen = False


def _freeze_startup_heap() -> None:
    """Once per process: collect, then move every object alive now (what imports and
    start-up built: long-lived anyway) to the collector's permanent generation. Batches
    allocate many short-lived objects, so full collections come every few chunks, and
    each re-traversed the whole start-up heap: ~0.3 s, about a fifth of a worker's CPU
    per send. Frozen objects are still freed by reference counting; only cycles among
    them are never collected."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


def deliver_batch(ctx: JobContext, jobs: list[ClaimedJob]) -> Outcomes:
    """Batch handler for `outreach.deliver`: the claimed jobs in chunks of
    `settings.batch_size` per organization (see `_deliver_chunks`); returns each job's
    outcome for the worker (None: done; `Snooze`; the error that fails or retries it)."""
    res = resources_of(ctx)
    if res.settings.freeze_startup_heap:
        _freeze_startup_heap()
    outcomes: Outcomes = {}
    by_org: dict[uuid.UUID, list[ClaimedJob]] = {}
    for job in jobs:
        if job.organization_id is None:
            outcomes[job.id] = TerminalError("missing_organization")
        else:
            by_org.setdefault(job.organization_id, []).append(job)
    size = max(1, res.settings.batch_size)
    for org_id, group in by_org.items():
        chunks = [group[lo:lo + size] for lo in range(0, len(group), size)]
        outcomes.update(_deliver_chunks(ctx, res, org_id, chunks))
    return outcomes


@dataclass
class _InFlight:
    prepared: list[_Prepared]
    futures: list[Future[SendResult]] | None  # None: sent in order when collected


def _deliver_chunks(ctx: JobContext, res: DispatchResources, org_id: uuid.UUID,
                    chunks: list[list[ClaimedJob]]) -> Outcomes:
    """Each chunk: one transaction decides it and commits `sending` (durably); its
    messages go out on the thread pool; one transaction records every outcome. The next
    chunk is decided while the previous chunk's messages are in flight (its `sending`
    rows and history are committed, so the next decisions count them)."""
    outcomes: Outcomes = {}
    flight: _InFlight | None = None
    for jobs in chunks:
        decided, prepared = _prepare_or_one_by_one(ctx, res, org_id, jobs)
        outcomes.update(decided)
        if flight is not None:
            outcomes.update(_land(ctx, res, org_id, flight))
        flight = _take_off(res, prepared) if prepared else None
        if flight is not None and flight.futures is None:
            # Sent from this thread: nothing to overlap, so finish it before deciding more.
            outcomes.update(_land(ctx, res, org_id, flight))
            flight = None
    if flight is not None:
        outcomes.update(_land(ctx, res, org_id, flight))
    return outcomes


def _prepare_or_one_by_one(ctx: JobContext, res: DispatchResources, org_id: uuid.UUID,
                           jobs: list[ClaimedJob]) -> tuple[Outcomes, list[_Prepared]]:
    try:
        return _prepare_chunk(ctx, res, org_id, jobs)
    except Exception as exc:
        if len(jobs) == 1:
            return {jobs[0].id: exc}, []
    # Nothing of the chunk was committed: deliver its jobs one by one, so the failure
    # stays with the job that caused it.
    log.warning("batch prepare failed, delivering one by one")
    outcomes: Outcomes = {}
    for job in jobs:
        outcomes.update(_deliver_chunks(ctx, res, org_id, [[job]]))
    return outcomes, []


def _take_off(res: DispatchResources, prepared: list[_Prepared]) -> _InFlight:
    if len(prepared) == 1 or res.settings.send_concurrency <= 1:
        return _InFlight(prepared, None)
    pool = res.send_pool()
    return _InFlight(prepared, [pool.submit(p.provider.send, p.message) for p in prepared])


def _land(ctx: JobContext, res: DispatchResources, org_id: uuid.UUID,
          flight: _InFlight) -> Outcomes:
    results = _collect(flight)
    killed = next((r for r in results if not isinstance(r, SendResult | Exception)), None)
    outcomes = _record_outcomes(ctx, res, org_id, flight.prepared, results)
    if killed is not None:
        # KeyboardInterrupt, SystemExit (or a test's stand-in for SIGKILL): what is known
        # is recorded; the rest stays `sending` and is reconciled.
        raise killed
    return outcomes


def _attempt_id(job: ClaimedJob) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(job.args["attempt_id"]))
    except (KeyError, ValueError):
        return None


def _prepare_chunk(ctx: JobContext, res: DispatchResources, org_id: uuid.UUID,
                   jobs: list[ClaimedJob]) -> tuple[Outcomes, list[_Prepared]]:
    outcomes: Outcomes = {}
    prepared: list[_Prepared] = []
    keys = organization_keys(ctx, res, org_id)
    wanted: dict[uuid.UUID, uuid.UUID] = {}
    for job in jobs:
        attempt_id = _attempt_id(job)
        if attempt_id is None:
            outcomes[job.id] = TerminalError("invalid_job_args")
        else:
            wanted[job.id] = attempt_id
    pending: list[PendingEvent] = []
    with write_locked_session(ctx.db, org_id) as session:
        _decide_chunk(ctx, res, session, keys, org_id, jobs, wanted, outcomes, prepared,
                      pending)
        record_many(session, pending)
    return outcomes, prepared


def _decide_chunk(ctx: JobContext, res: DispatchResources, session: Session,
                  keys: OrganizationKeys, org_id: uuid.UUID, jobs: list[ClaimedJob],
                  wanted: dict[uuid.UUID, uuid.UUID], outcomes: Outcomes,
                  prepared: list[_Prepared], pending: list[PendingEvent]) -> None:
    """Lock and decide every attempt of the chunk inside `session` (see `_prepare_chunk`)."""
    # The attempts, then the debtors' contact states, each locked in id order.
    attempts = {a.id: a for a in session.scalars(
        select(OutreachAttempt).where(among(session, OutreachAttempt.id, sorted(wanted.values())))
        .order_by(OutreachAttempt.id).with_for_update())}
    todo: list[tuple[ClaimedJob, OutreachAttempt, Provider | None]] = []
    for job in jobs:
        if job.id not in wanted:
            continue
        attempt = attempts.get(wanted[job.id])
        outcomes[job.id] = None
        if attempt is None or attempt.state not in ("planned", "sending"):
            continue
        if attempt.state == "sending":
            # A previous run committed `sending` and then died: the provider may have
            # the message. Never re-send blindly; reconcile instead.
            _finish(session, attempt, "unknown", error_code="interrupted", audit=pending)
            _schedule_reconcile(session, attempt, ctx.clock(), res.settings)
            continue
        channel = attempt.channel
        provider = res.channels.get("call" if channel == "voicemail" else channel)
        if provider is None and channel not in ("call", "voicemail"):
            _finish(session, attempt, "failed", error_code="channel_not_configured",
                    outcome="failure", audit=pending)
            continue
        delay = res.limiter.delay(channel)
        if delay > 0:
            outcomes[job.id] = Snooze(delay)
            continue
        todo.append((job, attempt, provider))
    if not todo:
        return
    now = ctx.clock()
    gids = sorted({a.guarantor_id for _, a, _ in todo})
    states = _lock_contact_states(session, org_id, gids, now)
    org = session.get(Organization, org_id)
    if org is None:
        raise TerminalError("missing_organization")
    # PLAT-REVOKE-NLU (c)-(f): suppressed while a person reviews an inbound message.
    in_review = set(session.scalars(select(ReviewItem.guarantor_id).where(
        among(session, ReviewItem.guarantor_id, gids), ReviewItem.state == "open")))
    facts = load_debtors(session, keys, org, [
        (a.guarantor_id, a.account_id) for _, a, _ in todo
        if a.guarantor_id not in in_review], now=now, profile=res.settings.profile)
    batch = _Batch(session, keys, res, org, now, states, pending)
    _decide_each(batch, todo, facts, in_review, outcomes, prepared)
    batch.insert_rows()


def _decide_each(batch: _Batch, todo: list[tuple[ClaimedJob, OutreachAttempt, Provider | None]],
                 facts: dict[tuple[uuid.UUID, uuid.UUID | None], DebtorFacts],
                 in_review: set[uuid.UUID], outcomes: Outcomes,
                 prepared: list[_Prepared]) -> None:
    session, pending = batch.session, batch.audit
    for job, attempt, provider in todo:
        if attempt.guarantor_id in in_review:
            _finish(session, attempt, "blocked", reasons=["PLAT-REVOKE-NLU"], audit=pending)
            continue
        try:
            ready = batch.prepare(attempt, provider,
                                  facts[(attempt.guarantor_id, attempt.account_id)])
        except BaaInactive as exc:
            outcomes[job.id] = exc
            continue
        if ready is not None:
            message, chosen, event_id = ready
            prepared.append(_Prepared(job, attempt.id, message, chosen, event_id))


@functools.lru_cache(maxsize=1)
def _portal_link_ttl() -> timedelta:
    """The portal's link lifetime (`CARECOLLECT_PORTAL_LINK_TTL_DAYS`), read once per
    process: building the settings object costs milliseconds."""
    from carecollect.portal.config import PortalSettings

    return PortalSettings().link_ttl


@dataclass
class _Batch:
    """What one chunk's decisions share: its transaction, the clock reading, the locked
    contact states, the BAA answers and the contacts recorded so far in this chunk."""

    session: Session
    keys: OrganizationKeys
    res: DispatchResources
    org: Organization
    now: datetime
    states: dict[uuid.UUID, ContactState]
    audit: list[PendingEvent]
    baa: dict[str, bool] = field(default_factory=dict)
    recorded: dict[uuid.UUID, list[sc.HistoryEvent]] = field(default_factory=dict)
    templates: dict[tuple[str, str], Template | None] = field(default_factory=dict)
    # New rows (contact events, portal links) inserted together by `insert_rows`.
    new_rows: dict[type[Any], list[dict[str, Any]]] = field(default_factory=dict)
    _overlay: list[OrgOverlay | None] = field(default_factory=list)

    def insert_later(self, row: Any) -> None:
        """Keep an unsaved ORM row's values for the chunk's bulk insert (one executemany
        per table instead of the unit of work's per-object bookkeeping)."""
        values = {k: v for k, v in vars(row).items() if not k.startswith("_")}
        self.new_rows.setdefault(type(row), []).append(values)

    def insert_rows(self) -> None:
        """Insert the chunk's new rows, before its attempts are committed `sending`."""
        for model, rows in self.new_rows.items():
            self.session.execute(insert(model), rows)
        self.new_rows.clear()

    def overlay(self) -> OrgOverlay | None:
        """The organization's stored compliance overlay (quiet days, holidays, tighter
        window, lower caps), else the deployment's; read once per chunk."""
        if not self._overlay:
            self._overlay.append(overlay_for(self.session, organization_id=self.org.id)
                                 or self.res.settings.overlay)
        return self._overlay[0]

    def template(self, key: str, language: str) -> Template | None:
        """The organization's own version of a template (in the message's language, else
        English), None to use the shipped one; read once per chunk."""
        if (key, language) not in self.templates:
            found = organization_template(self.session, organization_id=self.org.id, key=key,
                                          language=language)
            if found is None and language != "en" and (key, language) not in default_templates():
                found = organization_template(self.session, organization_id=self.org.id,
                                              key=key, language="en")
            self.templates[(key, language)] = found
        return self.templates[(key, language)]

    def portal_link(self, guarantor_id: uuid.UUID, now: datetime) -> str:
        """A new payment link for one message, as `portal.service.message_link` issues it
        (token returned once, SHA-256 stored, the portal's link lifetime, a
        `portal.link_issue` audit event), but batched: the row is flushed with the
        chunk's other rows and the event recorded with its other events, instead of a
        guarantor look-up, a flush and an audit insert per link (the guarantor was just
        loaded under the lock)."""
        from carecollect.portal.service import (
            MESSAGE_ACTOR,
            link_issue_details,
            link_path,
            link_row_subject,
            new_link,
        )

        row, token = new_link(actor=MESSAGE_ACTOR, organization_id=self.org.id,
                              guarantor_id=guarantor_id, ttl=_portal_link_ttl(), now=now)
        self.insert_later(row)
        self.audit.append(PendingEvent(MESSAGE_ACTOR, "portal.link_issue", link_row_subject(row),
                                       "success", link_issue_details(row)))
        return self.res.settings.public_base_url.rstrip("/") + link_path(token)

    def baa_active(self, service: str) -> bool:
        if service not in self.baa:
            today = tz.local_date(self.now, self.org.timezone)
            vendors = self.session.scalars(select(BusinessAssociate).where(
                BusinessAssociate.service == service)).all()
            self.baa[service] = any(v.baa_is_active(today) for v in vendors)
        return self.baa[service]

    def prepare(self, attempt: OutreachAttempt, provider: Provider | None, facts: DebtorFacts,
                ) -> tuple[OutboundMessage, Provider, uuid.UUID | None] | None:
        """Decide one attempt from stored state plus this chunk's earlier sends to the same
        debtor; on `send`, record the contact and mark it `sending` (None otherwise)."""
        session, keys, settings = self.session, self.keys, self.res.settings
        org = self.org
        state = self.states[attempt.guarantor_id]
        # Decide at this batch's clock reading, but always after the debtor's latest
        # recorded send (the engine counts history strictly before the decision time): a
        # second attempt in this chunk, or a worker whose clock lags another's, still
        # counts every earlier send under this lock.
        now = self.now
        if state.last_outbound_at is not None and state.last_outbound_at >= now:
            now = state.last_outbound_at + timedelta(microseconds=1)
        if any(f.kind == "do_not_contact" for f in facts.active_flags):
            _finish(session, attempt, "blocked", reasons=["PLAT-DO-NOT-CONTACT"], audit=self.audit)
            return None
        channel = attempt.channel
        cp = facts.contact_points.get(attempt.contact_point_id) \
            if attempt.contact_point_id else None
        if cp is None or (channel in ("sms", "call", "voicemail") and cp.kind != "phone") or \
                (channel == "email" and cp.kind != "email") or (channel == "letter" and
                                                                cp.kind != "postal"):
            _finish(session, attempt, "failed", error_code="contact_point_unusable",
                    outcome="failure", audit=self.audit)
            return None
        opt_out_url = (f"{settings.public_base_url.rstrip('/')}/hooks/email/unsubscribe/"
                       f"{unsubscribe_token(settings.link_secret, attempt.id)}")
        try:
            surface = SurfaceContext(
                channel=channel, display_name=org.billing_display_name,
                variables=_variables(session, keys, facts, settings, now, self.portal_link),
                language=attempt.language,
                phone_verified_and_consented=_consented_phone(facts, attempt.contact_point_id),
                opt_out_url=opt_out_url if channel == "email" else None,
            )
            own = self.template(attempt.template_key, attempt.language) \
                if attempt.template_key else None
            rendered = render_template(own, surface) if own is not None else \
                render(attempt.template_key, surface)
        except TemplateRefused as exc:
            _finish(session, attempt, "blocked", reasons=["HIPAA-CONTENT-CLASS"],
                    error_code="template_refused", details={"template": attempt.template_key},
                    audit=self.audit)
            log.info("template refused attempt=%s reason=%s", attempt.id, exc.message)
            return None
        dialer = "manual" if channel in ("call", "voicemail") else None
        url = rendered.list_unsubscribe_url if channel == "email" else None
        base = facts.context
        earlier = self.recorded.get(attempt.guarantor_id)
        if earlier:
            # Two attempts to one debtor in one chunk: the later one counts the earlier.
            base = dataclasses.replace(base, contact_history=base.contact_history
                                       + tuple(earlier))
        ctx = with_action(base, channel=channel, at=now,
                          contact_point_id=attempt.contact_point_id,
                          template=attempt.template_key, contains=rendered.contains,
                          includes_opt_out=rendered.includes_opt_out,
                          subject=rendered.subject, url=url, dialer=dialer)
        decision = evaluate(ctx, self.overlay())
        if decision.decision == "block":
            attempt.next_allowed_at = decision.next_allowed_at
            _finish(session, attempt, "blocked", reasons=list(decision.reasons), audit=self.audit)
            return None
        if decision.decision == "allow_with_modification":
            unresolved = _unresolved_modifications(decision.modification, rendered, channel)
            if unresolved:
                _finish(session, attempt, "blocked", reasons=list(decision.reasons),
                        details={"modifications": unresolved}, audit=self.audit)
                return None
        if channel in ("call", "voicemail"):
            task = CallTask(organization_id=attempt.organization_id, attempt_id=attempt.id,
                            guarantor_id=attempt.guarantor_id, contact_point_id=cp.id,
                            script_key=attempt.template_key, state="open", due_at=now)
            session.add(task)
            session.flush()
            attempt.provider, attempt.provider_message_id = "worklist", str(task.id)
            attempt.sent_at = now
            _finish(session, attempt, "sent", reasons=list(decision.reasons), audit=self.audit)
            return None
        if provider is None:
            raise TerminalError("channel_not_configured")
        if provider.service is not None and not self.baa_active(provider.service):
            _finish(session, attempt, "failed", error_code="baa_inactive", outcome="denied",
                    details={"service": provider.service}, audit=self.audit)
            raise BaaInactive(provider.service)
        to = facts.opened_values[cp.id]
        recipient_name = None
        if channel == "letter":
            cipher = keys.cipher()
            recipient_name = " ".join(filter(None, (
                cipher.open_row(facts.guarantor, "first_name"),
                cipher.open_row(facts.guarantor, "last_name"))))
        message = OutboundMessage(
            attempt_id=attempt.id, organization_id=attempt.organization_id,
            idempotency_key=attempt.idempotency_key, channel=channel, to=to,
            from_name=rendered.from_name, subject=rendered.subject,
            text_body=rendered.text_body, html_body=rendered.html_body,
            sms_body=rendered.sms_body, preheader=rendered.preheader,
            list_unsubscribe_url=rendered.list_unsubscribe_url,
            list_unsubscribe_mailto=settings.unsubscribe_mailto, envelope=rendered.envelope,
            letter_body=rendered.letter_body, recipient_name=recipient_name,
            language=rendered.language, extra={"organization_slug": org.slug},
        )
        # Record the contact now, under the lock, so the next check counts it (fail closed:
        # it is marked undeliverable later if the provider certainly did not take it).
        account_ids = [a.id for a in facts.accounts]
        event = contact_history_service.record_contact(
            session, keys=keys, actor=ACTOR, guarantor_id=attempt.guarantor_id,
            contact_point_id=cp.id, occurred_at=now, channel=channel, direction="outbound",
            outcome="delivered", account_ids=account_ids, audit=self.audit, add=False)
        self.insert_later(event)
        self.recorded.setdefault(attempt.guarantor_id, []).append(history_event(
            at=now, channel=channel, direction="outbound", contact_point_id=cp.id,
            person=event.person, account_ids=[str(a) for a in account_ids], dialer=None,
            outcome="delivered", text=None))
        state.last_outbound_at = now
        state.outbound_count += 1
        attempt.contact_event_id = event.id
        attempt.provider = provider.name
        attempt.sending_at = now
        attempt.send_count += 1
        if rendered.sms_body is not None:
            attempt.details = {**(attempt.details or {}), "body_sha256": hashlib.sha256(
                rendered.sms_body.encode()).hexdigest()}
        _finish(session, attempt, "sending", reasons=list(decision.reasons), audit=self.audit)
        return message, provider, event.id


def _collect(flight: _InFlight) -> list[SendResult | BaseException]:
    """Every in-flight message's result or exception, in order (sent here, one after the
    other, when it was not put on the pool)."""
    out: list[SendResult | BaseException] = []
    if flight.futures is None:
        for item in flight.prepared:
            try:
                out.append(item.provider.send(item.message))
            except BaseException as exc:  # sorted out by the caller
                out.append(exc)
                if not isinstance(exc, Exception):
                    break  # dying: send nothing more
        return out
    for future in flight.futures:
        try:
            out.append(future.result())
        except BaseException as exc:  # sorted out by the caller
            out.append(exc)
    return out


def _record_outcomes(ctx: JobContext, res: DispatchResources, org_id: uuid.UUID,
                     prepared: list[_Prepared],
                     results: list[SendResult | BaseException]) -> Outcomes:
    """Record every provider answer of a chunk in one transaction."""
    outcomes: Outcomes = {}
    pairs = list(zip(prepared, results, strict=False))
    if not pairs:
        return outcomes
    with ctx.db.tenant_session(org_id) as session:
        if all(isinstance(r, SendResult) for _, r in pairs):
            # A lost `sent` (crash before the WAL flush) leaves `sending`: reconciled,
            # never re-sent.
            relaxed_commit(session)
            _record_all_sent(session, org_id, [(item, cast(SendResult, result))
                                               for item, result in pairs], ctx.clock())
            return {item.job.id: None for item, _ in pairs}
        ids = sorted(item.attempt_id for item, _ in pairs)
        attempts = {a.id: a for a in session.scalars(
            select(OutreachAttempt).where(among(session, OutreachAttempt.id, ids))
            .order_by(OutreachAttempt.id).with_for_update())}
        now = ctx.clock()
        pending: list[PendingEvent] = []
        for item, result in pairs:
            outcomes[item.job.id] = _apply_result(session, res, item, attempts.get(
                item.attempt_id), result, now, pending)
        record_many(session, pending)
    return outcomes


def _record_all_sent(session: Session, org_id: uuid.UUID,
                     pairs: list[tuple[_Prepared, SendResult]], now: datetime) -> None:
    """`_record_sent` for a chunk whose every message the provider accepted (the usual
    case), as column reads and one executemany update instead of ORM objects: lock the
    attempts in id order, mark those still `sending` (or `unknown`) `sent`, one
    `message.send` event each."""
    by_id = {item.attempt_id: result for item, result in pairs}
    rows = session.execute(
        select(OutreachAttempt.id, OutreachAttempt.state, OutreachAttempt.channel,
               OutreachAttempt.guarantor_id, OutreachAttempt.organization_id)
        .where(among(session, OutreachAttempt.id, sorted(by_id)))
        .order_by(OutreachAttempt.id).with_for_update()).all()
    changes: list[dict[str, Any]] = []
    events: list[PendingEvent] = []
    for row in rows:
        if row.state not in ("sending", "unknown"):
            continue
        result = by_id[row.id]
        changes.append({"b_id": row.id, "b_provider": result.provider,
                        "b_message_id": result.provider_message_id,
                        "b_status": result.status})
        events.append(PendingEvent(
            ACTOR, "message.send",
            Subject("outreach_attempt", row.id, organization_id=row.organization_id,
                    patient_id=row.guarantor_id), "success",
            {"channel": row.channel, "provider": result.provider,
             "provider_message_id": result.provider_message_id[:120]}))
    if changes:
        table = cast(Table, OutreachAttempt.__table__)
        session.execute(
            update(table).where(table.c.id == bindparam("b_id"),
                                table.c.organization_id == org_id)
            .values(state="sent", provider=bindparam("b_provider"),
                    provider_message_id=bindparam("b_message_id"),
                    delivery_status=bindparam("b_status"), sent_at=now, error_code=None),
            changes)
    record_many(session, events)


def _apply_result(session: Session, res: DispatchResources, item: _Prepared,
                  attempt: OutreachAttempt | None, result: SendResult | BaseException,
                  now: datetime, pending: list[PendingEvent]) -> BaseException | None:
    """Record one provider answer; return the job's outcome."""
    sending = attempt is not None and attempt.state == "sending"
    if isinstance(result, SendResult):
        if attempt is not None:
            _record_sent(session, attempt, result, now, audit=pending)
        return None
    if isinstance(result, NotSent):
        last = item.job.attempt >= item.job.max_attempts
        retry = result.retryable and not last
        if attempt is not None and sending:
            _mark_event(session, item.contact_event_id, "undeliverable")
            attempt.contact_event_id = None
            if retry:
                attempt.state, attempt.error_code = "planned", result.code
            else:
                _finish(session, attempt, "failed", error_code=result.code, outcome="failure",
                        audit=pending)
        return RetryableError(result.code) if retry else None
    if isinstance(result, ChannelRefused):
        if attempt is not None and sending:
            _mark_event(session, item.contact_event_id, "undeliverable")
            _finish(session, attempt, "failed", error_code=result.code, outcome="denied",
                    audit=pending)
        return TerminalError(result.code)
    if isinstance(result, ChannelError):  # Ambiguous, or any other provider error
        if attempt is not None and sending:
            _finish(session, attempt, "unknown", error_code=result.code, outcome="failure",
                    audit=pending)
            _schedule_reconcile(session, attempt, now, res.settings)
        return None
    # Not a provider answer (a bug, or the process dying): the attempt stays `sending`;
    # the job's next run turns it `unknown` and reconciles it.
    return result


def _locked(session: Session, attempt_id: uuid.UUID) -> OutreachAttempt | None:
    return session.execute(select(OutreachAttempt).where(OutreachAttempt.id == attempt_id)
                           .with_for_update()).scalar_one_or_none()


def _record_sent(session: Session, attempt: OutreachAttempt, result: SendResult,
                 now: datetime, audit: list[PendingEvent] | None = None) -> None:
    if attempt.state not in ("sending", "unknown"):
        return
    attempt.state = "sent"
    attempt.provider = result.provider
    attempt.provider_message_id = result.provider_message_id
    attempt.delivery_status = result.status
    attempt.sent_at = now
    attempt.error_code = None
    event = PendingEvent(ACTOR, "message.send", _subject(attempt), "success",
                         {"channel": attempt.channel, "provider": result.provider,
                          "provider_message_id": result.provider_message_id[:120]})
    if audit is None:
        record_many(session, [event])
    else:
        audit.append(event)


# -- reconciliation ------------------------------------------------------------------------

def _schedule_reconcile(session: Session, attempt: OutreachAttempt, now: datetime,
                        settings: DispatchSettings) -> None:
    wait = settings.reconcile_after * (2 ** min(attempt.reconcile_count, 6))
    enqueue(session, RECONCILE, {"attempt_id": str(attempt.id)}, queue=QUEUE,
            organization_id=attempt.organization_id, scheduled_at=now + wait, max_attempts=3,
            unique_key=f"reconcile:{attempt.id}:{attempt.reconcile_count}")


def reconcile(ctx: JobContext, job: ClaimedJob) -> None:
    """Job handler for `outreach.reconcile`: settle one `unknown` attempt by asking the
    provider. Found: `sent`. Certainly absent: back to `planned` with a new delivery job
    (compliance is checked again then). Cannot tell: ask again later, then leave it
    `unknown` for staff (never re-sent without evidence it was not sent)."""
    res = resources_of(ctx)
    org_id = job.organization_id
    if org_id is None:
        raise TerminalError("missing_organization")
    attempt_id = uuid.UUID(str(job.args["attempt_id"]))
    keys = organization_keys(ctx, res, org_id)
    with ctx.db.tenant_session(org_id) as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        if attempt is None or attempt.state != "unknown":
            return
        provider = res.channels.get(attempt.channel)
        from carecollect.patient.models import ContactPoint

        cp = session.get(ContactPoint, attempt.contact_point_id) \
            if attempt.contact_point_id else None
        to = keys.cipher().open_row(cp, "value") if cp is not None else None
        sent_record = SentRecord(attempt.id, attempt.idempotency_key, to or "",
                                 (attempt.details or {}).get("body_sha256"),
                                 attempt.sending_at or attempt.updated_at)
    found = provider.lookup(sent_record) if provider is not None and to else None
    now = ctx.clock()
    with ctx.db.tenant_session(org_id) as session:
        attempt = _locked(session, attempt_id)
        if attempt is None or attempt.state != "unknown":
            return
        attempt.reconcile_count += 1
        if isinstance(found, SendResult):
            _record_sent(session, attempt, found, now)
        elif found is False:
            _mark_event(session, attempt.contact_event_id, "undeliverable")
            attempt.contact_event_id = None
            attempt.state = "planned"
            record(session, actor=ACTOR, action="outreach.reconcile", subject=_subject(attempt),
                   details={"result": "absent_requeued"})
            enqueue(session, DELIVER, {"attempt_id": str(attempt.id)}, queue=QUEUE,
                    organization_id=org_id, scheduled_at=now, max_attempts=8,
                    unique_key=f"deliver:{attempt.id}:r{attempt.reconcile_count}")
        elif attempt.reconcile_count < res.settings.reconcile_max:
            _schedule_reconcile(session, attempt, now, res.settings)
        else:
            attempt.details = {**(attempt.details or {}), "needs_review": True}
            record(session, actor=ACTOR, action="outreach.reconcile", subject=_subject(attempt),
                   details={"result": "undetermined"})


def apply_status_callback(session: Session, attempt: OutreachAttempt, *, provider: str,
                          provider_message_id: str, status: str, now: datetime) -> None:
    """A provider's delivery status (Twilio StatusCallback, e-mail bounce): an `unknown`
    attempt is settled as `sent`; a failed delivery stops counting toward caps."""
    if attempt.state in ("sending", "unknown"):
        _record_sent(session, attempt, SendResult(provider, provider_message_id, status), now)
    if attempt.state != "sent":
        return
    attempt.delivery_status = status[:24]
    if status in ("failed", "undelivered", "bounced"):
        _mark_event(session, attempt.contact_event_id, "undeliverable")


__all__ = [
    "DELIVER",
    "RECONCILE",
    "AppError",
    "BaaInactive",
    "DispatchResources",
    "DispatchSettings",
    "apply_status_callback",
    "create_attempt",
    "deliver",
    "deliver_batch",
    "reconcile",
]
