"""The set-based full rebuild (insight.rebuild, DuckDB) gives exactly the cells of the
per-account path (contributions.contribute per account) and of the incremental refresh,
on a fixture portfolio with the awkward cases: lines near local midnight and across both
DST changes, charges posted at the same instant, refunds and positive adjustments that lift
the balance above every charge, credit balances, accounts without a location, an account
enrolled without any line, accounts enrolled twice, old balances crossing the agency
threshold. Runs on SQLite and PostgreSQL (CARECOLLECT_TEST_BACKEND)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.db import Database
from carecollect.insight.contributions import Parameters
from carecollect.insight.models import InsightSettings, RollupCell, RollupState
from carecollect.insight.rebuild import rebuild_cells
from carecollect.insight.repository import insight_repository
from carecollect.insight.rollup import (
    ALL,
    LAG,
    python_cells,
    refresh,
    stored_aging_days,
    with_totals,
)
from carecollect.ledger.service import ledger_service
from tests.factories import TEST_ACTOR, Tenant, create_tenant
from tests.insight.portfolio import add_account, add_location, at, enroll
from tests.outreach.helpers import simple_campaign

Cells = dict[tuple[str, date, uuid.UUID | None, str], list[int]]
KINDS = (
    "charge",
    "charge",
    "charge",
    "patient_payment",
    "patient_payment",
    "insurance_payment",
    "insurance_adjustment",
    "write_off",
    "refund",
    "adjustment",
)
# Instants next to local midnight in New York and on both sides of the DST changes.
AWKWARD = (
    datetime(2026, 3, 10, 3, 30, tzinfo=UTC),  # 2026-03-09 23:30 local
    datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # 01:59 EST, just before spring forward
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT
    datetime(2025, 11, 2, 5, 30, tzinfo=UTC),  # 01:30 EDT
    datetime(2025, 11, 2, 6, 30, tzinfo=UTC),  # 01:30 EST (the repeated hour)
    datetime(2026, 1, 1, 4, 59, 59, 999_999, tzinfo=UTC),  # last instant of 2025 locally
    datetime(2026, 1, 1, 5, 0, tzinfo=UTC),  # first instant of 2026 locally
)


def _lines(rng: random.Random) -> list[tuple[str, int, datetime]]:
    count = rng.choice((1, 2, 3, 5, 8, 12))
    when = datetime(2024, 6, 1, 12, tzinfo=UTC) + timedelta(
        days=rng.randint(0, 600), minutes=rng.randint(0, 1439)
    )
    out: list[tuple[str, int, datetime]] = [("charge", rng.randint(1_00, 900_00), when)]
    for _ in range(count - 1):
        kind = rng.choice(KINDS)
        if rng.random() < 0.15:
            posted = rng.choice(AWKWARD)
        elif rng.random() < 0.1:
            posted = when  # the same instant as the previous line
        else:
            when = when + timedelta(days=rng.randint(0, 70), minutes=rng.randint(0, 600))
            posted = when
        amount = rng.randint(1_00, 400_00)
        if kind == "adjustment":
            amount = rng.choice((amount, -amount))
        out.append((kind, amount, min(posted, datetime(2026, 6, 30, tzinfo=UTC))))
    return out


def build(db: Database, seed: int = 20261127, accounts: int = 36) -> Tenant:
    rng = random.Random(seed)
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        locations: list[uuid.UUID | None] = [
            add_location(s, tenant, f"Office {i}") for i in range(3)
        ]
        locations.append(None)
        c1 = simple_campaign(s, tenant, channels=("sms",), key="c1", holdout_basis_points=5000)
        c2 = simple_campaign(s, tenant, channels=("sms",), key="c2", holdout_basis_points=1000)
        for n in range(accounts):
            lines = _lines(rng) if n != 5 else []  # account 5: enrolled, no line at all
            account_id, guarantor_id = add_account(
                s, tenant, n=n, location_id=locations[n % 4], lines=lines
            )
            first = lines[0][2] if lines else at("2026-02-01")
            for campaign in (c1, c2):
                if rng.random() < (0.5 if campaign == c1 else 0.25) or n == 5:
                    enrolled = first + timedelta(days=rng.randint(0, 90), hours=rng.randint(0, 23))
                    if rng.random() < 0.2:
                        enrolled = lines[-1][2] if lines else enrolled  # same instant as a line
                    enroll(
                        s,
                        tenant,
                        campaign_id=campaign,
                        account_id=account_id,
                        guarantor_id=guarantor_id,
                        cohort="holdout" if rng.random() < 0.3 else "treatment",
                        enrolled_at=enrolled,
                    )
    return tenant


def _params(s: Session, tenant: Tenant, now: datetime) -> Parameters:
    repo = insight_repository
    zone = ZoneInfo(repo.organization_zone(s, tenant.id))
    today = now.astimezone(zone).date()
    days = stored_aging_days(zone, repo.earliest_posting(s, tenant.id), today)
    return Parameters(
        zone=zone, aging_days=days, agency_threshold_days=repo.agency_threshold_days(s, tenant.id)
    )


def _nonzero(cells: Cells) -> Cells:
    return {k: list(v) for k, v in cells.items() if v[0] or v[1]}


def _stored(db: Database, tenant: Tenant) -> Cells:
    out: Cells = {}
    with db.tenant_session(tenant.id) as s:
        for metric, period, location, bucket, amount, count in s.execute(
            select(
                RollupCell.metric,
                RollupCell.period,
                RollupCell.location_id,
                RollupCell.bucket,
                RollupCell.amount_cents,
                RollupCell.count,
            )
        ):
            cell = out.setdefault((metric, period, location, bucket), [0, 0])
            cell[0] += amount
            cell[1] += count
    return _nonzero(out)


@pytest.mark.parametrize("threshold", [120, 45])
def test_set_based_rebuild_gives_the_per_account_cells(db: Database, threshold: int) -> None:
    tenant = build(db)
    if threshold != 120:
        with db.tenant_session(tenant.id) as s:
            s.add(InsightSettings(organization_id=tenant.id, agency_threshold_days=threshold))
    now = datetime(2026, 7, 1, 16, tzinfo=UTC)
    watermark = datetime.now(UTC) + timedelta(seconds=1)
    with db.tenant_session(tenant.id) as s:
        params = _params(s, tenant, now)
        assert params.agency_threshold_days == threshold
        # Month starts from after the first charge (July 2024) to today (the 1st).
        assert params.aging_days[0] == date(2024, 8, 1)
        assert params.aging_days[-1] == date(2026, 7, 1)
        assert len(params.aging_days) == 24
        expected, expected_accounts = python_cells(
            s, organization_id=tenant.id, watermark=watermark, params=params
        )
        got, accounts = rebuild_cells(
            s, organization_id=tenant.id, watermark=watermark, params=params
        )
    assert accounts == expected_accounts == 36
    expected = _nonzero(expected)
    assert set(got) == set(expected)
    assert got == expected
    metrics = {key[0] for key in got}
    assert metrics == {
        "ledger_day",
        "aging",
        "placement",
        "lift_enrolled",
        "lift_recovered",
        "agency",
    }
    assert None in {key[2] for key in got}  # accounts without a location have cells
    # Nothing created after the watermark is in it; an early watermark sees nothing.
    with db.tenant_session(tenant.id) as s:
        empty, none = rebuild_cells(
            s, organization_id=tenant.id, watermark=datetime(2020, 1, 1, tzinfo=UTC), params=params
        )
    assert (empty, none) == ({}, 0)


def test_one_metric_only(db: Database) -> None:
    tenant = build(db, seed=7, accounts=12)
    watermark = datetime.now(UTC) + timedelta(seconds=1)
    with db.tenant_session(tenant.id) as s:
        params = _params(s, tenant, datetime(2026, 7, 1, 16, tzinfo=UTC))
        only = Parameters(
            zone=params.zone,
            aging_days=params.aging_days,
            agency_threshold_days=120,
            metrics=frozenset({"agency"}),
        )
        got, _ = rebuild_cells(s, organization_id=tenant.id, watermark=watermark, params=only)
        expected, _ = python_cells(s, organization_id=tenant.id, watermark=watermark, params=only)
    assert got == _nonzero(expected)
    assert {key[0] for key in got} == {"agency"}


def test_set_based_full_rebuild_equals_the_incremental_path(db: Database) -> None:
    tenant = build(db, seed=11, accounts=24)
    with db.tenant_session(tenant.id) as s:
        first = refresh(s, organization_id=tenant.id, now=datetime.now(UTC) + LAG)
    assert first.mode == "full"
    assert first.accounts == 24
    with db.tenant_session(tenant.id) as s:
        reference, _ = python_cells(
            s,
            organization_id=tenant.id,
            watermark=first.watermark_at,
            params=_params(s, tenant, datetime.now(UTC) + LAG),
        )
    assert _stored(db, tenant) == _nonzero(with_totals(reference))
    # New lines after the watermark: a backdated charge, a payment that clears an old
    # balance, a refund near midnight, a second enrollment; then the incremental refresh.
    with db.tenant_session(tenant.id) as s:
        accounts = list(s.scalars(select(RollupCell.id).limit(0)))  # keeps the session open
        from carecollect.ledger.models import Account

        ids = sorted(s.scalars(select(Account.id).where(Account.organization_id == tenant.id)))
        assert not accounts
        for account_id, (kind, cents, posted) in zip(
            ids[:4],
            (
                ("charge", 120_00, at("2025-01-15")),
                ("patient_payment", 300_00, at("2026-06-01")),
                ("refund", 12_00, datetime(2026, 3, 10, 3, 30, tzinfo=UTC)),
                ("adjustment", 40_00, at("2026-06-15")),
            ),
            strict=True,
        ):
            ledger_service.post(
                s,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                account_id=account_id,
                kind=kind,
                amount_cents=cents,
                posted_at=posted,
            )
        campaign = simple_campaign(
            s, tenant, channels=("sms",), key="c3", holdout_basis_points=2000
        )
        from carecollect.ledger.models import Account as _Account

        guarantor = s.get(_Account, ids[6])
        assert guarantor is not None
        enroll(
            s,
            tenant,
            campaign_id=campaign,
            account_id=ids[6],
            guarantor_id=guarantor.guarantor_id,
            cohort="holdout",
            enrolled_at=at("2026-05-02", 3),
        )
    with db.tenant_session(tenant.id) as s:
        second = refresh(
            s, organization_id=tenant.id, now=datetime.now(UTC) + LAG + timedelta(seconds=1)
        )
    assert second.mode == "incremental"
    assert second.accounts == 5
    incremental = _stored(db, tenant)
    with db.tenant_session(tenant.id) as s:
        params = _params(s, tenant, datetime.now(UTC) + LAG)
        rebuilt, count = rebuild_cells(
            s, organization_id=tenant.id, watermark=second.watermark_at, params=params
        )
    assert count == 24
    assert _nonzero(with_totals(rebuilt)) == incremental
    assert rebuilt != _nonzero(reference)
    # The organization-wide cells are the sums over the locations.
    totals = {k: v for k, v in incremental.items() if k[0].endswith(ALL)}
    assert {k[2] for k in totals} == {None}
    summed: Cells = {}
    for (metric, period, _location, bucket), (amount, n) in rebuilt.items():
        cell = summed.setdefault((metric + ALL, period, None, bucket), [0, 0])
        cell[0] += amount
        cell[1] += n
    assert totals == _nonzero(summed)
    # And a full rebuild stores exactly those cells.
    with db.tenant_session(tenant.id) as s:
        s.delete(s.get(RollupState, tenant.id))
    with db.tenant_session(tenant.id) as s:
        third = refresh(
            s, organization_id=tenant.id, now=datetime.now(UTC) + LAG + timedelta(seconds=2)
        )
    assert third.mode == "full"
    assert _stored(db, tenant) == incremental


def test_unknown_rebuild_method_is_refused(db: Database) -> None:
    tenant = build(db, seed=3, accounts=3)
    with (
        db.tenant_session(tenant.id) as s,
        pytest.raises(ValueError, match="full_rebuild is 'set' or 'python'"),
    ):
        refresh(s, organization_id=tenant.id, now=datetime.now(UTC) + LAG, full_rebuild="pandas")
    with db.tenant_session(tenant.id) as s:
        assert s.get(RollupState, tenant.id) is None
        assert s.scalars(select(RollupCell.id)).first() is None
