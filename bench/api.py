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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from carecollect.audit import Actor
from carecollect.audit.keys import create_signing_key
from carecollect.db import Database
from carecollect.identity import service as identity
from carecollect.identity.permissions import API_GRANTABLE
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager
from carecollect.ledger.service import ledger_service
from carecollect.migrations.runner import upgrade
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate
from carecollect.patient.service import patient_service
from carecollect.tenant.service import create_organization

PG_ADMIN_URL = os.environ.get(
    "CARECOLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ACTOR = Actor.system("bench")
LAST = ["Alvarez", "Brennan", "Castillo", "Dawson", "Eriksen", "Fontaine", "Gallagher"]


@dataclass
class Setup:
    url: str
    env: dict[str, str]
    token: str
    cookie: str
    people: list[tuple[uuid.UUID, str, date]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, data_dir: Path, patients: int) -> Setup:
    """Migrate, create an organization with `patients` guarantors (phone, account, four
    ledger entries each), a staff session and an API key."""
    kek = base64.b64encode(os.urandom(32)).decode()
    manager = KeyManager(load_env_provider(kek), ttl_seconds=3600, planned_rows=patients)
    db = Database(url)
    upgrade(db.engine)
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    create_signing_key(data_dir / "keys" / "audit-signing.key")
    with db.system_session() as session:
        org = create_organization(
            session, keys=manager, actor=ACTOR, slug="bench", legal_name="Bench Dental",
            billing_display_name="Bench Billing", provider_license_state="MA",
            planned_patients=patients,
        )
        org_id, bits = org.id, org.blind_index_bits
    with db.system_session() as session:
        keys = manager.for_organization(session, org_id, blind_index_bits=bits)
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
    env = {
        **os.environ,
        "CARECOLLECT_DATA_DIR": str(data_dir),
        "CARECOLLECT_DATABASE_URL": url,
        "CARECOLLECT_KEY_PROVIDER": "env",
        "CARECOLLECT_KEK_BASE64": kek,
        "CARECOLLECT_SESSION_SECRET": base64.b64encode(os.urandom(24)).decode(),
        "CARECOLLECT_KEY_CACHE_TTL_SECONDS": "3600",
    }
    return Setup(url, env, token, cookie, people)


async def drive(
    base: str, scenario: str, setup: Setup, seconds: float, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {setup.token}"}
    cookies = {"cc_session": setup.cookie}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                guarantor_id, last, dob = rng.choice(setup.people)
                started = time.perf_counter()
                if scenario == "healthz":
                    response = await client.get("/healthz")
                elif scenario == "search":
                    response = await client.post(
                        "/api/v1/guarantors/search", headers=headers,
                        json={"last_name": last, "date_of_birth": dob.isoformat()},
                    )
                else:
                    response = await client.get(
                        f"/app/guarantors/{guarantor_id}", cookies=cookies
                    )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{scenario}: HTTP {response.status_code}")
                latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def run_backend(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    print(f"\n== {name}: preparing {args.patients} patients ...", flush=True)
    started = time.perf_counter()
    setup = prepare(url, data_dir, args.patients)
    print(f"   prepared in {time.perf_counter() - started:.1f} s", flush=True)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "carecollect.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        env=setup.env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        results: dict[str, float] = {}
        print(f"   {'scenario':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs healthz':>12}")
        for scenario, label in (("healthz", "GET /healthz (baseline)"),
                                ("search", "POST /api/v1/guarantors/search"),
                                ("account", "GET /app/guarantors/{id}")):
            asyncio.run(drive(base, scenario, setup, 1.0, args.concurrency))  # warm-up
            latencies = asyncio.run(
                drive(base, scenario, setup, args.seconds, args.concurrency)
            )
            rps = len(latencies) / args.seconds
            results[scenario] = rps
            quantiles = statistics.quantiles(latencies, n=100)
            ratio = rps / results["healthz"]
            print(f"   {label:<34}{rps:>9.0f}{quantiles[49] * 1000:>9.1f}"
                  f"{quantiles[98] * 1000:>9.1f}{ratio:>11.2f}x", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args()
    print(f"bench/api.py: {args.concurrency} connections, {args.seconds:.0f} s per scenario, "
          f"{os.cpu_count()} CPUs shared by server and load generator")
    with tempfile.TemporaryDirectory(prefix="cc-bench-api-") as tmp:
        if args.backend in ("sqlite", "both"):
            data = Path(tmp) / "sqlite"
            data.mkdir()
            run_backend("SQLite", f"sqlite:///{data / 'carecollect.db'}", data, args)
        if args.backend in ("postgresql", "both"):
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            name = f"cc_bench_api_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                data = Path(tmp) / "pg"
                data.mkdir()
                url = PG_ADMIN_URL.rpartition("/")[0] + f"/{name}"
                run_backend("PostgreSQL", url, data, args)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
