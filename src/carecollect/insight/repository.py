"""Every query of the insights domain. Repositories take the session and never commit.

Reads of other domains' tables are aggregate-only (ids, kinds, amounts, timestamps): no
sealed column is ever selected here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from carecollect.consent.models import MediumOptOut, Revocation
from carecollect.insight.contributions import AccountHistory, Enrollment, Line
from carecollect.insight.models import (
    FLAGGED_ATTEMPT_PREDICATE,
    ChannelCost,
    InsightSettings,
    RollupCell,
    RollupState,
)
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.outreach.cadence_models import (
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    OutreachSignal,
)
from carecollect.outreach.outbox import ATTEMPT_STATES, OutreachAttempt, ReviewItem
from carecollect.patient.models import Flag
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.tenant.models import Organization

FAILED_DELIVERY = ("failed", "undelivered", "bounced", "undeliverable")
_CHUNK = 500
# Stands for "created before the watermark" in histories read with `seen_at`.
SEEN = datetime(1970, 1, 1, tzinfo=UTC)
_FETCH = 20_000


def _as_uuid(value: Any) -> Any:
    """A raw id column value (hex text on SQLite, UUID on PostgreSQL) as a UUID."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(hex=str(value))


class Scope:
    """Which accounts a report covers: all, one location, or the given ids."""

    def __init__(
        self, *, location_id: uuid.UUID | None = None,
        account_ids: frozenset[uuid.UUID] | None = None,
    ) -> None:
        self.location_id = location_id
        self.account_ids = account_ids

    def admits(self, account_id: uuid.UUID, location_id: uuid.UUID | None) -> bool:
        if self.location_id is not None and location_id != self.location_id:
            return False
        return self.account_ids is None or account_id in self.account_ids


def _flagged_in(query: Select[Any], organization_id: uuid.UUID, *, start: datetime,
                end: datetime, campaign_key: str | None, location_id: uuid.UUID | None,
                ) -> Select[Any]:
    """`query` over `outreach_attempt` kept to the organization's blocked or re-timed
    attempts scheduled in [start, end), of one campaign and one location if given."""
    query = query.where(
        OutreachAttempt.organization_id == organization_id,
        OutreachAttempt.scheduled_for >= start, OutreachAttempt.scheduled_for < end,
        text(f"({FLAGGED_ATTEMPT_PREDICATE})"),
    )
    if campaign_key is not None:
        query = query.where(OutreachAttempt.cadence_key == campaign_key)
    if location_id is not None:
        query = query.join(Account, Account.id == OutreachAttempt.account_id).where(
            Account.location_id == location_id)
    return query


class InsightRepository:
    # -- organization and settings ----------------------------------------------------------

    def organization_zone(self, session: Session, organization_id: uuid.UUID) -> str:
        zone = session.scalar(
            select(Organization.timezone).where(Organization.id == organization_id)
        )
        return zone or "UTC"

    def agency_threshold_days(self, session: Session, organization_id: uuid.UUID) -> int:
        days = session.scalar(
            select(InsightSettings.agency_threshold_days).where(
                InsightSettings.organization_id == organization_id
            )
        )
        return 120 if days is None else int(days)

    def settings(self, session: Session, organization_id: uuid.UUID) -> InsightSettings | None:
        return session.get(InsightSettings, organization_id)

    def channel_costs(
        self, session: Session, organization_id: uuid.UUID
    ) -> list[tuple[str, date, int]]:
        rows = session.execute(
            select(
                ChannelCost.channel, ChannelCost.effective_on,
                ChannelCost.cost_per_attempt_millicents,
            )
            .where(ChannelCost.organization_id == organization_id)
            .order_by(ChannelCost.channel, ChannelCost.effective_on)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def channel_cost_row(
        self, session: Session, organization_id: uuid.UUID, channel: str, effective_on: date
    ) -> ChannelCost | None:
        return session.scalar(
            select(ChannelCost).where(
                ChannelCost.organization_id == organization_id,
                ChannelCost.channel == channel,
                ChannelCost.effective_on == effective_on,
            )
        )

    # -- campaigns ------------------------------------------------------------------------

    def campaign_exists(
        self, session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID
    ) -> bool:
        return session.scalar(
            select(Campaign.id).where(
                Campaign.organization_id == organization_id, Campaign.id == campaign_id
            )
        ) is not None

    def campaign_keys(self, session: Session, organization_id: uuid.UUID) -> dict[str, str]:
        """campaign id (text) -> campaign key (a configured identifier, never PHI)."""
        rows = session.execute(
            select(Campaign.id, Campaign.key).where(Campaign.organization_id == organization_id)
        )
        return {str(r[0]): r[1] for r in rows}

    def campaign_key(
        self, session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID
    ) -> str | None:
        return session.scalar(
            select(Campaign.key).where(
                Campaign.organization_id == organization_id, Campaign.id == campaign_id
            )
        )

    def campaigns_with_holdout(
        self, session: Session, organization_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, str, int]]:
        rows = session.execute(
            select(Campaign.id, Campaign.key, Campaign.holdout_basis_points)
            .where(Campaign.organization_id == organization_id)
            .order_by(Campaign.key)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def step_count(self, session: Session, campaign_id: uuid.UUID) -> int:
        return int(session.scalar(
            select(func.count(CampaignStep.id)).where(CampaignStep.campaign_id == campaign_id)
        ) or 0)

    def enrolled_account_ids(
        self, session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID
    ) -> frozenset[uuid.UUID]:
        return frozenset(session.scalars(
            select(CampaignEnrollment.account_id).where(
                CampaignEnrollment.organization_id == organization_id,
                CampaignEnrollment.campaign_id == campaign_id,
            )
        ))

    # -- ledger histories ---------------------------------------------------------------

    def earliest_posting(self, session: Session, organization_id: uuid.UUID) -> datetime | None:
        return session.scalar(
            select(func.min(LedgerEntry.posted_at)).where(
                LedgerEntry.organization_id == organization_id, LedgerEntry.kind == "charge"
            )
        )

    def touched_accounts(
        self, session: Session, organization_id: uuid.UUID, since: datetime,
        until: datetime | None = None,
    ) -> set[uuid.UUID]:
        """Accounts with a ledger line or an enrollment created in [since, until)."""
        ledger = select(LedgerEntry.account_id).where(
            LedgerEntry.organization_id == organization_id, LedgerEntry.created_at >= since
        )
        enrolled = select(CampaignEnrollment.account_id).where(
            CampaignEnrollment.organization_id == organization_id,
            CampaignEnrollment.created_at >= since,
        )
        if until is not None:
            ledger = ledger.where(LedgerEntry.created_at < until)
            enrolled = enrolled.where(CampaignEnrollment.created_at < until)
        # No DISTINCT in SQL: with it SQLite prefers scanning an index already ordered by
        # account over the (organization_id, created_at) range; the set removes duplicates.
        return set(session.scalars(ledger)) | set(session.scalars(enrolled))

    def account_locations(
        self, session: Session, organization_id: uuid.UUID, account_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID | None]:
        out: dict[uuid.UUID, uuid.UUID | None] = {}
        ids = list(account_ids)
        for start in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(Account.id, Account.location_id).where(
                    Account.organization_id == organization_id,
                    Account.id.in_(ids[start:start + _CHUNK]),
                )
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    def histories(
        self, session: Session, organization_id: uuid.UUID, account_ids: Sequence[uuid.UUID],
        *, seen_at: datetime | None = None,
    ) -> dict[uuid.UUID, AccountHistory]:
        """Ledger lines and enrollments of the given accounts with their creation times.

        With `seen_at`, the database only says whether each row was created before it: the
        row's `created_at` is then SEEN (before) or None (after), which is all the live
        correction needs and spares converting a timestamp per row."""
        out: dict[uuid.UUID, AccountHistory] = {a: AccountHistory() for a in account_ids}
        ids = list(account_ids)
        conn = session.connection()
        line_created: Any = LedgerEntry.created_at
        enrollment_created: Any = CampaignEnrollment.created_at
        if seen_at is not None:
            line_created = case((LedgerEntry.created_at < seen_at, 1), else_=0)
            enrollment_created = case((CampaignEnrollment.created_at < seen_at, 1), else_=0)
        for start in range(0, len(ids), _CHUNK):
            part = ids[start:start + _CHUNK]
            for line in conn.execute(
                select(LedgerEntry.account_id, LedgerEntry.kind, LedgerEntry.amount_cents,
                       LedgerEntry.posted_at, line_created).where(
                    LedgerEntry.organization_id == organization_id,
                    LedgerEntry.account_id.in_(part),
                )
            ):
                created = line[4] if seen_at is None else (SEEN if line[4] else None)
                out[line[0]].lines.append(Line(line[1], int(line[2]), line[3], created))
            for row in conn.execute(
                select(CampaignEnrollment.account_id, CampaignEnrollment.campaign_id,
                       CampaignEnrollment.cohort, CampaignEnrollment.enrolled_at,
                       enrollment_created).where(
                    CampaignEnrollment.organization_id == organization_id,
                    CampaignEnrollment.account_id.in_(part),
                )
            ):
                created = row[4] if seen_at is None else (SEEN if row[4] else None)
                out[row[0]].enrollments.append(Enrollment(row[1], row[2], row[3], created))
        return out

    def stream_histories(
        self, session: Session, organization_id: uuid.UUID, created_before: datetime | None,
    ) -> Iterator[tuple[uuid.UUID, uuid.UUID | None, AccountHistory]]:
        """Every account of the organization with its history, in account-id order, reading
        the ledger once in (account_id) order; only rows created before `created_before`."""
        enrollments: dict[uuid.UUID, list[Enrollment]] = {}
        query = select(
            CampaignEnrollment.account_id, CampaignEnrollment.campaign_id,
            CampaignEnrollment.cohort, CampaignEnrollment.enrolled_at,
            CampaignEnrollment.created_at,
        ).where(CampaignEnrollment.organization_id == organization_id)
        if created_before is not None:
            query = query.where(CampaignEnrollment.created_at < created_before)
        for item in session.execute(query):
            enrollments.setdefault(item[0], []).append(
                Enrollment(item[1], item[2], item[3], item[4]))
        # Ids come back raw (hex text on SQLite, the driver's UUID on PostgreSQL) and are
        # converted once per account, not once per line; `created_at` is not needed here.
        lines = (
            select(type_coerce(LedgerEntry.account_id, String),
                   type_coerce(Account.location_id, String), LedgerEntry.kind,
                   LedgerEntry.amount_cents, LedgerEntry.posted_at)
            .join(Account, Account.id == LedgerEntry.account_id)
            .where(LedgerEntry.organization_id == organization_id)
            .order_by(LedgerEntry.account_id)
        )
        if created_before is not None:
            lines = lines.where(LedgerEntry.created_at < created_before)
        current: Any = None
        account_id: uuid.UUID | None = None
        location: uuid.UUID | None = None
        history = AccountHistory()
        result = session.execute(lines, execution_options={"yield_per": _FETCH})
        for row in result:
            if row[0] != current:
                if account_id is not None:
                    history.enrollments = enrollments.pop(account_id, [])
                    yield account_id, location, history
                current, history = row[0], AccountHistory()
                account_id, location = _as_uuid(row[0]), _as_uuid(row[1])
            history.lines.append(Line(row[2], int(row[3]), row[4]))
        if account_id is not None:
            history.enrollments = enrollments.pop(account_id, [])
            yield account_id, location, history
        # Enrolled accounts without any ledger line still contribute nothing but exist.
        if enrollments:
            locations = self.account_locations(session, organization_id, enrollments)
            for account_id, items in enrollments.items():
                yield account_id, locations.get(account_id), AccountHistory([], items)

    # -- rollup cells and state ---------------------------------------------------------

    def rollup_state(self, session: Session, organization_id: uuid.UUID) -> RollupState | None:
        return session.get(RollupState, organization_id)

    def cells(
        self, session: Session, organization_id: uuid.UUID, *, metrics: Sequence[str],
        period_from: date | None, period_to: date | None, location_id: uuid.UUID | None,
    ) -> list[tuple[str, date, str, int, int]]:
        """Stored cells of the metrics with period in [period_from, period_to), summed over
        locations (or of one location): metric, period, bucket, amount, count."""
        query = select(
            RollupCell.metric, RollupCell.period, RollupCell.bucket,
            func.sum(RollupCell.amount_cents), func.sum(RollupCell.count),
        ).where(RollupCell.organization_id == organization_id, RollupCell.metric.in_(metrics))
        if period_from is not None:
            query = query.where(RollupCell.period >= period_from)
        if period_to is not None:
            query = query.where(RollupCell.period < period_to)
        if location_id is not None:
            query = query.where(RollupCell.location_id == location_id)
        query = query.group_by(RollupCell.metric, RollupCell.period, RollupCell.bucket)
        return [(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in session.execute(query)]

    def ledger_total_before(
        self, session: Session, organization_id: uuid.UUID, *, before: date,
        location_id: uuid.UUID | None, metric: str = "ledger_day",
    ) -> int:
        query = select(func.coalesce(func.sum(RollupCell.amount_cents), 0)).where(
            RollupCell.organization_id == organization_id, RollupCell.metric == metric,
            RollupCell.period < before,
        )
        if location_id is not None:
            query = query.where(RollupCell.location_id == location_id)
        return int(session.scalar(query) or 0)

    def replace_cells(
        self, session: Session, organization_id: uuid.UUID,
        cells: dict[tuple[str, date, uuid.UUID | None, str], list[int]],
    ) -> None:
        session.execute(delete(RollupCell).where(RollupCell.organization_id == organization_id))
        self._insert_cells(session, organization_id, cells)

    def _insert_cells(
        self, session: Session, organization_id: uuid.UUID,
        cells: dict[tuple[str, date, uuid.UUID | None, str], list[int]],
    ) -> None:
        rows = [
            {"id": uuid.uuid4(), "organization_id": organization_id, "metric": key[0],
             "period": key[1], "location_id": key[2], "bucket": key[3],
             "amount_cents": value[0], "count": value[1]}
            for key, value in cells.items() if value[0] or value[1]
        ]
        conn = session.connection()
        for start in range(0, len(rows), 5_000):
            conn.execute(insert(RollupCell.__table__), rows[start:start + 5_000])  # type: ignore[arg-type]

    def apply_cell_deltas(
        self, session: Session, organization_id: uuid.UUID,
        deltas: dict[tuple[str, date, uuid.UUID | None, str], list[int]],
    ) -> None:
        """Add deltas to existing cells (insert the missing ones). The caller holds the
        rollup state row locked, so no other writer changes these cells meanwhile."""
        conn = session.connection()
        table: Any = RollupCell.__table__
        for (metric, period, location_id, bucket), (amount, count) in deltas.items():
            if not amount and not count:
                continue
            condition = [
                table.c.organization_id == organization_id, table.c.metric == metric,
                table.c.period == period, table.c.bucket == bucket,
                table.c.location_id.is_(None) if location_id is None
                else table.c.location_id == location_id,
            ]
            changed = conn.execute(
                update(table).where(*condition).values(
                    amount_cents=table.c.amount_cents + amount, count=table.c.count + count)
            ).rowcount
            if not changed:
                conn.execute(insert(table).values(
                    id=uuid.uuid4(), organization_id=organization_id, metric=metric,
                    period=period, location_id=location_id, bucket=bucket,
                    amount_cents=amount, count=count))

    def lock_state(self, session: Session, organization_id: uuid.UUID) -> RollupState | None:
        return session.scalar(
            select(RollupState).where(RollupState.organization_id == organization_id)
            .with_for_update()
        )

    # -- outreach, compliance, consent, disputes, plans -------------------------------

    def attempts(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime,
        campaign_key: str | None,
    ) -> list[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID, str, str | None, str | None, str,
                    str | None, list[str], datetime | None, dict[str, Any], datetime]]:
        """Attempts scheduled in [start, end): id, account, guarantor, channel, campaign key,
        step key, state, delivery status, reasons, next_allowed_at, details, scheduled_for."""
        query = select(
            OutreachAttempt.id, OutreachAttempt.account_id, OutreachAttempt.guarantor_id,
            OutreachAttempt.channel, OutreachAttempt.cadence_key, OutreachAttempt.step_key,
            OutreachAttempt.state, OutreachAttempt.delivery_status, OutreachAttempt.reasons,
            OutreachAttempt.next_allowed_at, OutreachAttempt.details,
            OutreachAttempt.scheduled_for,
        ).where(
            OutreachAttempt.organization_id == organization_id,
            OutreachAttempt.scheduled_for >= start, OutreachAttempt.scheduled_for < end,
        )
        if campaign_key is not None:
            query = query.where(OutreachAttempt.cadence_key == campaign_key)
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], list(r[8] or []), r[9],
             dict(r[10] or {}), r[11])
            for r in session.execute(query)
        ]

    def flagged_attempts(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime,
        campaign_key: str | None, location_id: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID | None, str, str, list[str], dict[str, Any]]]:
        """Blocked or re-timed attempts scheduled in [start, end) (the partial index):
        account, channel, state, reasons (rule ids), details."""
        query = select(
            OutreachAttempt.account_id, OutreachAttempt.channel, OutreachAttempt.state,
            OutreachAttempt.reasons, OutreachAttempt.details,
        )
        query = _flagged_in(query, organization_id, start=start, end=end,
                            campaign_key=campaign_key, location_id=location_id)
        return [(r[0], r[1], r[2], list(r[3] or []), dict(r[4] or {}))
                for r in session.execute(query)]

    def flagged_attempt_groups(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime,
        campaign_key: str | None, location_id: uuid.UUID | None = None,
    ) -> list[tuple[str, str, list[str], bool, int]]:
        """The same attempts as `flagged_attempts`, counted in SQL by (channel, state,
        reasons, re-timed): channel, state, reasons, retimed, count. A few dozen rows
        instead of one per attempt."""
        reasons = cast(OutreachAttempt.reasons, Text)
        retimed = OutreachAttempt.details["planned_outcome"].as_string() == "retime"
        retimed_flag = case((retimed, 1), else_=0)
        query = select(
            OutreachAttempt.channel, OutreachAttempt.state, reasons, retimed_flag, func.count(),
        )
        query = _flagged_in(query, organization_id, start=start, end=end,
                            campaign_key=campaign_key, location_id=location_id)
        query = query.group_by(OutreachAttempt.channel, OutreachAttempt.state, reasons,
                               retimed_flag)
        return [(r[0], r[1], list(json.loads(r[2]) or []) if r[2] else [], bool(r[3]),
                 int(r[4])) for r in session.execute(query)]

    def flagged_attempt_rows(
        self, session: Session, organization_id: uuid.UUID, *, updated_before: datetime,
        ranges: Sequence[tuple[datetime, datetime]] | None = None,
    ) -> list[tuple[datetime, uuid.UUID | None, str, str, list[str], bool]]:
        """Blocked or re-timed attempts last changed before `updated_before` (scheduled in
        one of `ranges`, or at any time), with their account's location: scheduled_for,
        location, channel, state, reasons, re-timed: what the rollup's compliance cells
        count (read once per full rebuild, and for the days an incremental refresh
        recomputes)."""
        reasons = cast(OutreachAttempt.reasons, Text)
        retimed = OutreachAttempt.details["planned_outcome"].as_string() == "retime"
        retimed_flag = case((retimed, 1), else_=0)
        base = select(
            OutreachAttempt.scheduled_for, Account.location_id, OutreachAttempt.channel,
            OutreachAttempt.state, reasons, retimed_flag,
        ).outerjoin(Account, Account.id == OutreachAttempt.account_id).where(
            OutreachAttempt.organization_id == organization_id,
            OutreachAttempt.updated_at < updated_before,
            text(f"({FLAGGED_ATTEMPT_PREDICATE})"),
        )
        queries = [base] if ranges is None else [
            base.where(OutreachAttempt.scheduled_for >= start,
                       OutreachAttempt.scheduled_for < end) for start, end in ranges]
        out: list[tuple[datetime, uuid.UUID | None, str, str, list[str], bool]] = []
        for query in queries:
            out.extend((r[0], r[1], r[2], r[3], list(json.loads(r[4]) or []) if r[4] else [],
                        bool(r[5])) for r in session.execute(query))
        return out

    def attempt_times_updated(
        self, session: Session, organization_id: uuid.UUID, since: datetime,
        until: datetime | None = None,
    ) -> list[datetime]:
        """scheduled_for of every attempt (any state) changed in [since, until): the days
        whose compliance cells are recomputed. Read through the (state, updated_at) index,
        one range per state."""
        query = select(OutreachAttempt.scheduled_for).where(
            OutreachAttempt.state.in_(ATTEMPT_STATES),
            OutreachAttempt.updated_at >= since,
            OutreachAttempt.organization_id == organization_id,
        )
        if until is not None:
            query = query.where(OutreachAttempt.updated_at < until)
        return list(session.scalars(query))

    def bucket_totals(
        self, session: Session, organization_id: uuid.UUID, *, metric: str, period_from: date,
        period_to: date, location_id: uuid.UUID | None, skip_periods: Iterable[date] = (),
    ) -> list[tuple[str, int, int]]:
        """Stored cells of one metric summed over [period_from, period_to) minus
        `skip_periods`, per bucket (of one location, or with no location for the
        organization-wide `@all` cells): bucket, amount, count."""
        query = select(
            RollupCell.bucket, func.sum(RollupCell.amount_cents), func.sum(RollupCell.count),
        ).where(
            RollupCell.organization_id == organization_id, RollupCell.metric == metric,
            RollupCell.period >= period_from, RollupCell.period < period_to,
        )
        skipped = sorted(set(skip_periods))
        if skipped:
            query = query.where(RollupCell.period.not_in(skipped))
        if location_id is not None:
            query = query.where(RollupCell.location_id == location_id)
        query = query.group_by(RollupCell.bucket)
        return [(r[0], int(r[1]), int(r[2])) for r in session.execute(query)]

    def replace_period_cells(
        self, session: Session, organization_id: uuid.UUID, *, metrics: Sequence[str],
        periods: Iterable[date],
        cells: dict[tuple[str, date, uuid.UUID | None, str], list[int]],
    ) -> None:
        """Replace every stored cell of `metrics` for `periods` (all locations) by `cells`.
        The caller holds the rollup state row locked."""
        days = sorted(set(periods))
        for start in range(0, len(days), _CHUNK):
            session.execute(delete(RollupCell).where(
                RollupCell.organization_id == organization_id, RollupCell.metric.in_(metrics),
                RollupCell.period.in_(days[start:start + _CHUNK])))
        self._insert_cells(session, organization_id, cells)

    def sent_attempts_for_accounts(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime,
    ) -> list[tuple[uuid.UUID, uuid.UUID, str, str | None, str | None, datetime]]:
        """Sent attempts with an account and no failed delivery, scheduled in [start, end):
        id, account, channel, campaign key, step key, and when it was sent (attribution)."""
        rows = session.execute(
            select(OutreachAttempt.id, OutreachAttempt.account_id, OutreachAttempt.channel,
                   OutreachAttempt.cadence_key, OutreachAttempt.step_key,
                   OutreachAttempt.sent_at, OutreachAttempt.scheduled_for).where(
                OutreachAttempt.organization_id == organization_id,
                OutreachAttempt.scheduled_for >= start, OutreachAttempt.scheduled_for < end,
                OutreachAttempt.state == "sent", OutreachAttempt.account_id.is_not(None),
                or_(OutreachAttempt.delivery_status.is_(None),
                    OutreachAttempt.delivery_status.not_in(FAILED_DELIVERY)),
            )
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5] or r[6]) for r in rows if r[1] is not None]

    def patient_payments(
        self, session: Session, organization_id: uuid.UUID, *, account_ids: Iterable[uuid.UUID],
        start: datetime, end: datetime,
    ) -> list[tuple[uuid.UUID, int, datetime]]:
        """Patient payments of the given accounts posted in [start, end): account, amount
        (negative), posted_at."""
        ids = sorted(account_ids)
        out: list[tuple[uuid.UUID, int, datetime]] = []
        for first in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(LedgerEntry.account_id, LedgerEntry.amount_cents, LedgerEntry.posted_at)
                .where(
                    LedgerEntry.organization_id == organization_id,
                    LedgerEntry.account_id.in_(ids[first:first + _CHUNK]),
                    LedgerEntry.kind == "patient_payment",
                    LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end,
                )
            )
            out.extend((r[0], int(r[1]), r[2]) for r in rows)
        return out

    def signals_for_attempts(
        self, session: Session, organization_id: uuid.UUID, attempt_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, set[str]]:
        out: dict[uuid.UUID, set[str]] = {}
        ids = list(attempt_ids)
        for start in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(OutreachSignal.attempt_id, OutreachSignal.kind).where(
                    OutreachSignal.organization_id == organization_id,
                    OutreachSignal.attempt_id.in_(ids[start:start + _CHUNK]),
                )
            )
            for attempt_id, kind in rows:
                if attempt_id is not None:
                    out.setdefault(attempt_id, set()).add(kind)
        return out

    def revocations(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, str, datetime]]:
        rows = session.execute(
            select(Revocation.guarantor_id, Revocation.channel, Revocation.received_at).where(
                Revocation.organization_id == organization_id,
                Revocation.received_at >= start, Revocation.received_at < end,
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def medium_opt_outs(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, str, datetime]]:
        rows = session.execute(
            select(MediumOptOut.guarantor_id, MediumOptOut.medium, MediumOptOut.received_at)
            .where(
                MediumOptOut.organization_id == organization_id,
                MediumOptOut.received_at >= start, MediumOptOut.received_at < end,
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def guarantor_ids_of_accounts(
        self, session: Session, organization_id: uuid.UUID, account_ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        out: set[uuid.UUID] = set()
        ids = list(account_ids)
        for start in range(0, len(ids), _CHUNK):
            out.update(session.scalars(
                select(Account.guarantor_id).where(
                    Account.organization_id == organization_id,
                    Account.id.in_(ids[start:start + _CHUNK]),
                )
            ))
        return out

    def location_guarantors(
        self, session: Session, organization_id: uuid.UUID, location_id: uuid.UUID
    ) -> set[uuid.UUID]:
        return set(session.scalars(
            select(Account.guarantor_id).where(
                Account.organization_id == organization_id, Account.location_id == location_id
            ).distinct()
        ))

    def location_account_ids(
        self, session: Session, organization_id: uuid.UUID, location_id: uuid.UUID
    ) -> frozenset[uuid.UUID]:
        return frozenset(session.scalars(
            select(Account.id).where(
                Account.organization_id == organization_id, Account.location_id == location_id
            )
        ))

    def dispute_flags(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID | None, datetime, datetime | None]]:
        rows = session.execute(
            select(Flag.guarantor_id, Flag.account_id, Flag.raised_at, Flag.cleared_at).where(
                Flag.organization_id == organization_id, Flag.kind == "dispute",
                Flag.raised_at >= start, Flag.raised_at < end,
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def dispute_reviews(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, datetime, datetime | None, str]]:
        rows = session.execute(
            select(ReviewItem.guarantor_id, ReviewItem.created_at, ReviewItem.resolved_at,
                   ReviewItem.state).where(
                ReviewItem.organization_id == organization_id, ReviewItem.kind == "dispute",
                ReviewItem.created_at >= start, ReviewItem.created_at < end,
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def plans(
        self, session: Session, organization_id: uuid.UUID, *, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, str, int, datetime, datetime | None]]:
        rows = session.execute(
            select(PaymentPlan.id, PaymentPlan.account_id, PaymentPlan.status,
                   PaymentPlan.total_cents, PaymentPlan.created_at, PaymentPlan.ended_at).where(
                PaymentPlan.organization_id == organization_id,
                PaymentPlan.created_at >= start, PaymentPlan.created_at < end,
            )
        )
        return [(r[0], r[1], r[2], int(r[3]), r[4], r[5]) for r in rows]

    def installments_due(
        self, session: Session, organization_id: uuid.UUID, *, start: date, end: date
    ) -> list[tuple[uuid.UUID, date, str, datetime | None, uuid.UUID, str]]:
        """Installments due in [start, end): plan, due_on, status, paid_at, account, zone."""
        rows = session.execute(
            select(PlanInstallment.plan_id, PlanInstallment.due_on, PlanInstallment.status,
                   PlanInstallment.paid_at, PaymentPlan.account_id, PaymentPlan.timezone)
            .join(PaymentPlan, PaymentPlan.id == PlanInstallment.plan_id)
            .where(
                PlanInstallment.organization_id == organization_id,
                PlanInstallment.due_on >= start, PlanInstallment.due_on < end,
            )
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


insight_repository = InsightRepository()
