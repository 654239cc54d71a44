"""Benchmark: authenticated patient search (API) and the staff account page, over HTTP.

One run starts `uvicorn carecollect.app:create_app` in its own process on 127.0.0.1 and
drives it with a local asyncio + httpx load generator (C concurrent connections for S
seconds per scenario). It prints requests per second and p50/p99 latency for:

  * GET /healthz (the baseline: same server, same client, no auth, no database work);
  * POST /api/v1/guarantors/search with an API key (blind-index lookup by last name +
    date of birth, candidates decrypted, one audit event per search);
  * GET /app/guarantors/{id} with a staff session cookie (the full account page: every
    PHI field decrypted, ledger, consents, flags, history, one audit event);

and each scenario's throughput as a ratio to the baseline. Backends: SQLite (a file in a
temporary data directory) and PostgreSQL (a throwaway database on CARECOLLECT_TEST_PG_URL).

Usage: python bench/api.py [--backend sqlite|postgresql|both] [--seconds 5]
                           [--concurrency 8] [--patients 2000]
The load generator shares the machine with the server: figures are a floor, not a ceiling.
Server, load generator and table: bench/http_harness.py (shared with bench/portal.py).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from http_harness import ACTOR, arguments, for_each_backend, measure, open_practice, server

from carecollect.identity import service as identity
from carecollect.identity.permissions import API_GRANTABLE
from carecollect.ledger.service import ledger_service
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate
from carecollect.patient.service import patient_service

LAST = ["Alvarez", "Brennan", "Castillo", "Dawson", "Eriksen", "Fontaine", "Gallagher"]


@dataclass
class Setup:
    env: dict[str, str]
    token: str
    cookie: str
    people: list[tuple[uuid.UUID, str, date]]


def prepare(url: str, data_dir: Path, patients: int) -> Setup:
    """Migrate, create an organization with `patients` guarantors (phone, account, four
    ledger entries each), a staff session and an API key."""
    practice = open_practice(url, data_dir, slug="bench", patients=patients)
    db, org_id, keys = practice.db, practice.organization_id, practice.keys
    rng = random.Random(7)
    now = datetime.now(UTC)
    people: list[tuple[uuid.UUID, str, date]] = []
    for start in range(0, patients, 500):
        with db.tenant_session(org_id) as session:
            for index in range(start, min(start + 500, patients)):
                last = f"{rng.choice(LAST)}{index}"
                dob = date(1940 + index % 60, 1 + index % 12, 1 + index % 28)
                g = patient_service.create_guarantor(
                    session, keys=keys, actor=ACTOR,
                    data=GuarantorCreate(first_name="Avery", last_name=last, date_of_birth=dob),
                )
                patient_service.add_contact_point(
                    session, keys=keys, actor=ACTOR,
                    data=ContactPointCreate(guarantor_id=g.id, kind="phone",
                                            value=f"+1617555{index % 10_000:04d}"),
                )
                account = ledger_service.open_account(
                    session, keys=keys, actor=ACTOR, guarantor_id=g.id,
                    account_number=f"B{index:07d}", opened_at=now - timedelta(days=100),
                )
                for days, cents in ((90, 20_000), (60, 5_000), (30, 7_500)):
                    ledger_service.post(
                        session, keys=keys, actor=ACTOR, account_id=account.id,
                        kind="charge", amount_cents=cents, posted_at=now - timedelta(days=days),
                        description="Crown", procedure_codes="D2740",
                    )
                ledger_service.post(
                    session, keys=keys, actor=ACTOR, account_id=account.id,
                    kind="patient_payment", amount_cents=4_000,
                    posted_at=now - timedelta(days=10),
                )
                people.append((g.id, last, dob))
    with db.tenant_session(org_id) as session:
        user, _ = identity.create_user(
            session, actor=ACTOR, organization_id=org_id, email="bench@staff.example.org",
            display_name="Bench", role="billing_manager",
        )
        _, cookie = identity.create_session(
            session, user=user, mfa_passed=True, now=now,
            policy=identity.IdentityPolicy(absolute_timeout=timedelta(days=1)),
        )
        _, token = identity.create_api_key(
            session, actor=ACTOR, organization_id=org_id, name="bench",
            scopes=sorted(p.value for p in API_GRANTABLE),
        )
    db.dispose()
    return Setup(practice.server_env(), token, cookie, people)


def run_backend(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    print(f"\n== {name}: preparing {args.patients} patients ...", flush=True)
    started = time.perf_counter()
    setup = prepare(url, data_dir, args.patients)
    print(f"   prepared in {time.perf_counter() - started:.1f} s", flush=True)
    headers = {"Authorization": f"Bearer {setup.token}"}
    cookies = {"cc_session": setup.cookie}

    async def search(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        _, last, dob = rng.choice(setup.people)
        return await client.post("/api/v1/guarantors/search", headers=headers,
                                 json={"last_name": last, "date_of_birth": dob.isoformat()})

    async def account(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        guarantor_id, _, _ = rng.choice(setup.people)
        return await client.get(f"/app/guarantors/{guarantor_id}", cookies=cookies)

    with server(setup.env) as (base, pid):
        measure(base, pid, [("POST /api/v1/guarantors/search", search, 200),
                            ("GET /app/guarantors/{id}", account, 200)], args)


def main() -> None:
    args = arguments(__doc__ or "", patients=2000)
    for_each_backend("api", args, run_backend)


if __name__ == "__main__":
    main()
