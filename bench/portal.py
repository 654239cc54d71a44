"""Benchmark: the patient portal's bill page and a sandbox card payment, over HTTP.

One run starts `uvicorn carecollect.app:create_app` in its own process on 127.0.0.1 and
drives it with a local asyncio + httpx load generator (C concurrent connections for S
seconds per scenario; bench/http_harness.py, shared with bench/api.py). It prints
requests per second, p50/p99 latency and CPU-seconds (server process and load
generator, from /proc and process_time) for:

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
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from http_harness import ACTOR, arguments, for_each_backend, measure, open_practice, server

from carecollect.ledger.service import ledger_service
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate, PostalAddress
from carecollect.patient.service import patient_service
from carecollect.portal import service as portal_service
from carecollect.portal.config import PortalSettings
from carecollect.portal.service import VerificationInput

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
# Long sessions: the run must not outlive them (the portal default is 15/60 minutes).
PORTAL = PortalSettings(idle_minutes=600, absolute_minutes=600)


@dataclass
class Visitor:
    account_id: uuid.UUID
    cookie: str
    csrf: str = ""


def prepare(url: str, data_dir: Path, patients: int) -> tuple[dict[str, str], list[Visitor]]:
    """Migrate; one organization with `patients` guarantors (address, account, three
    charges and an insurance payment each), each with a verified portal session."""
    practice = open_practice(url, data_dir, slug="bench-portal", patients=patients)
    db, org_id, keys = practice.db, practice.organization_id, practice.keys
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
    env = practice.server_env(
        CARECOLLECT_PAYMENT_PROCESSOR="sandbox",
        CARECOLLECT_PORTAL_IDLE_MINUTES="600",
        CARECOLLECT_PORTAL_ABSOLUTE_MINUTES="600",
    )
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


def run_backend(name: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    print(f"\n== {name}: preparing {args.patients} patients with portal sessions ...",
          flush=True)
    started = time.perf_counter()
    env, visitors = prepare(url, data_dir, args.patients)
    print(f"   prepared in {time.perf_counter() - started:.1f} s", flush=True)

    async def bill(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        return await client.get("/pay/bill", headers=_cookie_header(rng.choice(visitors)))

    async def pay(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        visitor = rng.choice(visitors)
        return await client.post(
            f"/pay/accounts/{visitor.account_id}/pay", headers=_cookie_header(visitor),
            data={"csrf_token": visitor.csrf, "amount": "1.00", "card": "pm_sandbox_visa",
                  "attempt": secrets.token_hex(12)})

    with server(env) as (base, pid):
        asyncio.run(fetch_csrf(base, visitors))
        measure(base, pid, [("GET /pay/bill", bill, 200),
                            ("POST /pay/accounts/{id}/pay", pay, 303)], args)


def main() -> None:
    args = arguments(__doc__ or "", patients=200)
    for_each_backend("portal", args, run_backend)


if __name__ == "__main__":
    main()
