"""Benchmark: the patient portal's bill page and a sandbox card payment, over HTTP.

One run starts `uvicorn carecollect.app:create_app` in its own process on 127.0.0.1 and
drives it with a local asyncio + httpx load generator (C concurrent connections for S
seconds per scenario), like bench/api.py. It prints requests per second, p50/p99 latency
and CPU-seconds (server process and load generator, from /proc and process_time) for:

  * GET /healthz (the baseline: same server, same client, no session, no database work);
  * GET /pay/bill with a verified portal session (session lookup and touch, the itemized
    bill: every charge decrypted, insurance lines, plan and payments, one audit event);
  * POST /pay/accounts/{id}/pay with the sandbox Visa (CSRF check, amount parsing, the
    in-process sandbox charge, posting with allocation, the receipt job, audit events)
    answered by the 303 to the receipt;

and each scenario's throughput as a ratio to the baseline, with the load average before
and after. Backends: SQLite (a file in a temporary data directory) and PostgreSQL (a
throwaway database on CARECOLLECT_TEST_PG_URL).

Usage: python bench/portal.py [--backend sqlite|postgresql|both] [--seconds 5]
                              [--concurrency 8] [--patients 200]
The load generator shares the machine with the server: figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import secrets
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
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager
from carecollect.ledger.service import ledger_service
from carecollect.migrations.runner import upgrade
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate, PostalAddress
from carecollect.patient.service import patient_service
from carecollect.portal import service as portal_service
from carecollect.portal.config import PortalSettings
from carecollect.portal.service import VerificationInput
from carecollect.tenant.service import create_organization

PG_ADMIN_URL = os.environ.get(
    "CARECOLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ACTOR = Actor.system("bench")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
# Long sessions: the run must not outlive them (the portal default is 15/60 minutes).
PORTAL = PortalSettings(idle_minutes=600, absolute_minutes=600)


@dataclass
class Visitor:
    account_id: uuid.UUID
    cookie: str
    csrf: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, data_dir: Path, patients: int) -> tuple[dict[str, str], list[Visitor]]:
    """Migrate; one organization with `patients` guarantors (address, account, three
    charges and an insurance payment each), each with a verified portal session."""
    kek = base64.b64encode(os.urandom(32)).decode()
    manager = KeyManager(load_env_provider(kek), ttl_seconds=3600, planned_rows=patients)
    db = Database(url)
    upgrade(db.engine)
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    create_signing_key(data_dir / "keys" / "audit-signing.key")
    with db.system_session() as session:
        org = create_organization(
            session, keys=manager, actor=ACTOR, slug="bench-portal", legal_name="Bench Dental",
            billing_display_name="Bench Billing", provider_license_state="MA",
            planned_patients=patients,
        )
        org_id, bits = org.id, org.blind_index_bits
    with db.system_session() as session:
        keys = manager.for_organization(session, org_id, blind_index_bits=bits)
    now = datetime.now(UTC)
    visitors: list[Visitor] = []
    for index in range(patients):
        last, birth = f"Benchperson{index}", date(1950 + index % 50, 1 + index % 12, 1 + index % 28)
        with db.tenant_session(org_id) as session:
            g = patient_service.create_guarantor(
                session, keys=keys, actor=ACTOR,
                data=GuarantorCreate(first_name="Avery", last_name=last, date_of_birth=birth,
                                     state="MA"))
            patient_service.add_contact_point(
                session, keys=keys, actor=ACTOR, data=ContactPointCreate(
                    guarantor_id=g.id, kind="postal", is_primary=True,
                    value=PostalAddress(line1=f"{index} Bench St", city="Boston", state="MA",
                                        zip="02115")))
            account = ledger_service.open_account(
                session, keys=keys, actor=ACTOR, guarantor_id=g.id,
                account_number=f"P{index:07d}", opened_at=now - timedelta(days=100))
            crown = None
            for days, cents, what in ((90, 11_000, "PROPHY ADULT"), (60, 125_000, "CROWN"),
                                      (30, 9_500, "BITEWINGS")):
                entry = ledger_service.post(
                    session, keys=keys, actor=ACTOR, account_id=account.id, kind="charge",
                    amount_cents=cents, posted_at=now - timedelta(days=days),
                    service_date=(now - timedelta(days=days + 1)).date(), description=what)
                crown = entry if what == "CROWN" else crown
            insurance = ledger_service.post(
                session, keys=keys, actor=ACTOR, account_id=account.id,
                kind="insurance_payment", amount_cents=60_000,
                posted_at=now - timedelta(days=20))
            insurance.applies_to_entry_id = crown.id if crown else None
            link = portal_service.issue_link(session, actor=ACTOR, organization_id=org_id,
                                             guarantor_id=g.id, ttl=timedelta(days=1), now=now)
        with db.system_session() as session:
            found = portal_service.find_link(session, token=link.token, now=now)
        if found is None:
            raise RuntimeError("the link just issued was not found")
        with db.tenant_session(org_id) as session:
            outcome = portal_service.verify_identity(
                session, keys=keys, link_id=found.link_id, now=now, settings=PORTAL,
                given=VerificationInput(last_name=last, date_of_birth=birth, zip5=None))
            if outcome != "success":
                raise RuntimeError(f"verification: {outcome}")
            _row, cookie = portal_service.start_session(
                session, link_id=found.link_id, language="en", now=now, settings=PORTAL)
        visitors.append(Visitor(account.id, cookie))
    db.dispose()
    env = {
        **os.environ,
        "CARECOLLECT_DATA_DIR": str(data_dir),
        "CARECOLLECT_DATABASE_URL": url,
        "CARECOLLECT_KEY_PROVIDER": "env",
        "CARECOLLECT_KEK_BASE64": kek,
        "CARECOLLECT_SESSION_SECRET": base64.b64encode(os.urandom(24)).decode(),
        "CARECOLLECT_KEY_CACHE_TTL_SECONDS": "3600",
        "CARECOLLECT_PAYMENT_PROCESSOR": "sandbox",
        "CARECOLLECT_PORTAL_IDLE_MINUTES": "600",
        "CARECOLLECT_PORTAL_ABSOLUTE_MINUTES": "600",
    }
    return env, visitors


def _cookie_header(visitor: Visitor) -> dict[str, str]:
    # The cookie's name depends on whether the server marks cookies Secure; send both.
    return {"Cookie": f"cc_portal={visitor.cookie}; __Secure-cc_portal={visitor.cookie}"}


async def fetch_csrf(base: str, visitors: list[Visitor]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for visitor in visitors:
            response = await client.get(f"/pay/accounts/{visitor.account_id}/pay",
                                        headers=_cookie_header(visitor))
            found = CSRF_RE.search(response.text)
            if response.status_code != 200 or found is None:
                raise RuntimeError(f"pay form: HTTP {response.status_code}")
            visitor.csrf = found.group(1)


async def drive(base: str, scenario: str, visitors: list[Visitor], seconds: float,
                concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(11)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                visitor = rng.choice(visitors)
                started = time.perf_counter()
                if scenario == "healthz":
                    response = await client.get("/healthz")
                    expected = 200
                elif scenario == "bill":
                    response = await client.get("/pay/bill", headers=_cookie_header(visitor))
                    expected = 200
                else:
                    response = await client.post(
                        f"/pay/accounts/{visitor.account_id}/pay",
                        headers=_cookie_header(visitor),
                        data={"csrf_token": visitor.csrf, "amount": "1.00",
                              "card": "pm_sandbox_visa", "attempt": secrets.token_hex(12)})
                    expected = 303
                elapsed = time.perf_counter() - started
                if response.status_code != expected:
                    raise RuntimeError(f"{scenario}: HTTP {response.status_code}")
                latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_backend(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    print(f"\n== {name}: preparing {args.patients} patients with portal sessions ...",
          flush=True)
    started = time.perf_counter()
    env, visitors = prepare(url, data_dir, args.patients)
    print(f"   prepared in {time.perf_counter() - started:.1f} s", flush=True)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "carecollect.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        asyncio.run(fetch_csrf(base, visitors))
        results: dict[str, float] = {}
        print(f"   load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"   {'scenario':<36}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs healthz':>11}"
              f"{'srv CPU s':>11}{'gen CPU s':>11}{'CPU ms/req':>12}")
        for scenario, label in (("healthz", "GET /healthz (baseline)"),
                                ("bill", "GET /pay/bill"),
                                ("pay", "POST /pay/accounts/{id}/pay")):
            asyncio.run(drive(base, scenario, visitors, 1.0, args.concurrency))  # warm-up
            server_cpu = process_cpu_seconds(server.pid)
            client_cpu = time.process_time()
            latencies = asyncio.run(
                drive(base, scenario, visitors, args.seconds, args.concurrency))
            server_cpu = process_cpu_seconds(server.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            rps = len(latencies) / args.seconds
            results[scenario] = rps
            quantiles = statistics.quantiles(latencies, n=100)
            ratio = rps / results["healthz"]
            print(f"   {label:<36}{rps:>8.0f}{quantiles[49] * 1000:>9.1f}"
                  f"{quantiles[98] * 1000:>9.1f}{ratio:>10.2f}x{server_cpu:>11.2f}"
                  f"{client_cpu:>11.2f}{server_cpu * 1000 / len(latencies):>12.2f}",
                  flush=True)
        print(f"   load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--patients", type=int, default=200)
    args = parser.parse_args()
    print(f"bench/portal.py: {args.concurrency} connections, {args.seconds:.0f} s per "
          f"scenario, {os.cpu_count()} CPUs shared by server and load generator")
    with tempfile.TemporaryDirectory(prefix="cc-bench-portal-") as tmp:
        if args.backend in ("sqlite", "both"):
            data = Path(tmp) / "sqlite"
            data.mkdir()
            run_backend("SQLite", f"sqlite:///{data / 'carecollect.db'}", data, args)
        if args.backend in ("postgresql", "both"):
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            name = f"cc_bench_portal_{uuid.uuid4().hex[:8]}"
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
