"""What the HTTP benchmarks (bench/api.py, bench/portal.py) share: a migrated database with
one organization, the server started as its own `uvicorn` process on 127.0.0.1, a local
asyncio + httpx load generator, the results table (requests per second, p50/p99 latency,
ratio to `/healthz` on the same server, CPU seconds of server and generator) and the
SQLite / throwaway-PostgreSQL backends.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from carecollect.audit import Actor
from carecollect.audit.keys import create_signing_key
from carecollect.db import Database
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.migrations.runner import upgrade
from carecollect.tenant.service import create_organization

PG_ADMIN_URL = os.environ.get(
    "CARECOLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ACTOR = Actor.system("bench")
# One request of a scenario: (client, random generator) -> response; checked by status.
Request = Callable[[httpx.AsyncClient, random.Random], Awaitable[httpx.Response]]


@dataclass
class Practice:
    """A migrated database with one organization, and how to start a server on it."""

    db: Database
    url: str
    data_dir: Path
    kek: str
    organization_id: uuid.UUID
    keys: OrganizationKeys

    def server_env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "CARECOLLECT_DATA_DIR": str(self.data_dir),
            "CARECOLLECT_DATABASE_URL": self.url,
            "CARECOLLECT_KEY_PROVIDER": "env",
            "CARECOLLECT_KEK_BASE64": self.kek,
            "CARECOLLECT_SESSION_SECRET": base64.b64encode(os.urandom(24)).decode(),
            "CARECOLLECT_KEY_CACHE_TTL_SECONDS": "3600",
            **extra,
        }


def open_practice(url: str, data_dir: Path, *, slug: str, patients: int) -> Practice:
    """Migrate, write the audit signing key and create the organization."""
    kek = base64.b64encode(os.urandom(32)).decode()
    manager = KeyManager(load_env_provider(kek), ttl_seconds=3600, planned_rows=patients)
    db = Database(url)
    upgrade(db.engine)
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    create_signing_key(data_dir / "keys" / "audit-signing.key")
    with db.system_session() as session:
        org = create_organization(
            session, keys=manager, actor=ACTOR, slug=slug, legal_name="Bench Dental",
            billing_display_name="Bench Billing", provider_license_state="MA",
            planned_patients=patients,
        )
        org_id, bits = org.id, org.blind_index_bits
    with db.system_session() as session:
        keys = manager.for_organization(session, org_id, blind_index_bits=bits)
    return Practice(db, url, data_dir, kek, org_id, keys)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`uvicorn carecollect.app:create_app` in its own process; yields (base URL, pid)
    once `/healthz` answers (at most 30 s)."""
    port = free_port()
    process = subprocess.Popen(
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
        else:
            raise RuntimeError("the server did not answer /healthz within 30 s")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


async def drive(base: str, request: Request, expected: int, seconds: float,
                concurrency: int) -> list[float]:
    """`concurrency` connections sending `request` for `seconds`; the latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(11)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await request(client, rng)
                elapsed = time.perf_counter() - started
                if response.status_code != expected:
                    raise RuntimeError(f"HTTP {response.status_code}, expected {expected}")
                latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _healthz(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
    return await client.get("/healthz")


def measure(base: str, pid: int, scenarios: list[tuple[str, Request, int]],
            args: argparse.Namespace) -> dict[str, float]:
    """Run `/healthz` (the baseline) then each (label, request, expected status) scenario
    after a one-second warm-up; print and return requests per second by label."""
    rows: list[tuple[str, Request, int]] = [("GET /healthz (baseline)", _healthz, 200),
                                            *scenarios]
    results: dict[str, float] = {}
    print(f"   load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"   {'scenario':<36}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs healthz':>11}"
          f"{'srv CPU s':>11}{'gen CPU s':>11}{'CPU ms/req':>12}")
    baseline = 0.0
    for label, request, expected in rows:
        asyncio.run(drive(base, request, expected, 1.0, args.concurrency))  # warm-up
        server_cpu, client_cpu = process_cpu_seconds(pid), time.process_time()
        latencies = asyncio.run(drive(base, request, expected, args.seconds, args.concurrency))
        server_cpu = process_cpu_seconds(pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        rps = len(latencies) / args.seconds
        baseline = baseline or rps
        results[label] = rps
        quantiles = statistics.quantiles(latencies, n=100)
        print(f"   {label:<36}{rps:>8.0f}{quantiles[49] * 1000:>9.1f}"
              f"{quantiles[98] * 1000:>9.1f}{rps / baseline:>10.2f}x{server_cpu:>11.2f}"
              f"{client_cpu:>11.2f}{server_cpu * 1000 / len(latencies):>12.2f}", flush=True)
    print(f"   load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return results


def arguments(doc: str, *, patients: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--patients", type=int, default=patients)
    return parser.parse_args()


def for_each_backend(name: str, args: argparse.Namespace,
                     run: Callable[[str, str, Path, argparse.Namespace], None]) -> None:
    """Call `run(label, database_url, data_dir, args)` on SQLite (a file in a temporary
    directory) and/or a throwaway PostgreSQL database that is dropped afterwards."""
    print(f"bench/{name}.py: {args.concurrency} connections, {args.seconds:.0f} s per "
          f"scenario, {os.cpu_count()} CPUs shared by server and load generator")
    with tempfile.TemporaryDirectory(prefix=f"cc-bench-{name}-") as tmp:
        if args.backend in ("sqlite", "both"):
            data = Path(tmp) / "sqlite"
            data.mkdir()
            run("SQLite", f"sqlite:///{data / 'carecollect.db'}", data, args)
        if args.backend in ("postgresql", "both"):
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            database = f"cc_bench_{name}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            try:
                data = Path(tmp) / "pg"
                data.mkdir()
                url = PG_ADMIN_URL.rpartition("/")[0] + f"/{database}"
                run("PostgreSQL", url, data, args)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()
