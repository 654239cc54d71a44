"""`carecollect import` through the real entry point: summaries, exit codes, the BAA gate,
an import killed mid-file, and canary PHI that must appear nowhere but in the imported
database's ciphertext."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from carecollect.db import Database
from carecollect.tenant.models import Organization
from tests.ingest.conftest import aged_row, write_csv

ENV_KEYS = ("CARECOLLECT_DATA_DIR", "CARECOLLECT_DATABASE_URL", "CARECOLLECT_KEY_PROVIDER")
X12 = Path(__file__).resolve().parents[3] / "shared" / "data" / "x12-835"
CANARIES = ("Zqxcanaryfirst", "Qzvcanarylast", "zqx.canary@example.com", "6175550123",
            "555-0123", "Canarystreet", "CANARY9931", "1961-07-04", "07/04/1961", "Zqxkid")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "carecollect.cli.main", *args],
                          capture_output=True, text=True, env=clean, timeout=300, check=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `carecollect init` per module (it is slow); each test copies the directory."""
    data = tmp_path_factory.mktemp("template") / "data"
    result = run("init", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture
def init(template: Path) -> Callable[..., None]:
    def make(data: Path, *, covered_entity: bool = True) -> None:
        shutil.copytree(template, data)
        db = Database(f"sqlite:///{data / 'carecollect.db'}")
        with db.system_session() as session:
            session.execute(update(Organization).values(
                operated_by_covered_entity=covered_entity))
        db.dispose()

    return make


def people(count: int) -> list[dict[str, str]]:
    return [
        aged_row(**{"Account No": f"N-{i}", "Guarantor ID": f"G{i}", "Patient ID": f"P{i}",
                    "Guarantor First Name": f"First{i}", "Patient First Name": f"First{i}",
                    "Cell Phone": f"617-555-{1000 + i:04d}", "Email": f"p{i}@example.com",
                    "Current": f"{i}.25"})
        for i in range(count)
    ]


def test_summary_json_and_reimport(tmp_path: Path, init: Callable[..., None]) -> None:
    data = tmp_path / "data"
    init(data)
    path = write_csv(tmp_path / "ar.csv", people(5))
    args = ("import", "csv", str(path), "--mapping", "generic-aged-receivables",
            "--data-dir", str(data))
    first = run(*args, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["rows_imported"], summary["created"]["guarantor"]) == (5, 5)
    second = run(*args)
    assert second.returncode == 0
    assert second.stdout.splitlines()[:3] == [
        "csv import: 5 rows read, 5 imported, 0 rejected in 1 batches",
        "created: none",
        "updated: none",
    ]


def test_without_baa_nothing_is_read_or_stored(tmp_path: Path, init: Callable[..., None]) -> None:
    data = tmp_path / "data"
    init(data, covered_entity=False)
    path = write_csv(tmp_path / "ar.csv", people(2))
    result = run("import", "csv", str(path), "--mapping", "generic-aged-receivables",
                 "--data-dir", str(data))
    assert result.returncode == 1
    assert result.stderr == (
        "error: this organization accepts no PHI yet: record the hosting operator's business "
        "associate agreement (date, signatories, document hash) or mark the deployment as "
        "operated by the covered entity\n")
    assert b"First1" not in (data / "carecollect.db").read_bytes()


def test_file_that_is_not_what_it_claims_is_one_line_exit_2(
    tmp_path: Path, init: Callable[..., None]
) -> None:
    data = tmp_path / "data"
    init(data)
    path = tmp_path / "remit.835"
    path.write_text("this is not an 835")
    result = run("import", "x12-835", str(path), "--data-dir", str(data))
    assert (result.returncode, result.stderr) == (
        2, "error: not a valid X12 835: it does not start with an ISA segment\n")
    result = run("import", "csv", str(path), "--data-dir", str(data))
    assert result.returncode == 2
    assert result.stderr.startswith("error: a CSV import needs --mapping FILE")


@pytest.mark.skipif(not X12.is_dir(), reason="shared X12 data not present")
def test_x12_unmatched_claims_reported_exit_2(tmp_path: Path, init: Callable[..., None]) -> None:
    data = tmp_path / "data"
    init(data)
    result = run("import", "x12-835", str(X12 / "managed-care.835"), "--data-dir", str(data),
                 "--json", "--error-report", str(tmp_path / "r.csv"))
    assert result.returncode == 2
    summary = json.loads(result.stdout)
    assert (summary["rows_rejected"], summary["noted"]) == (2, {"claims_unmatched": 2})
    assert (tmp_path / "r.csv").read_text().splitlines() == [
        "row,field,reason",
        "1,claim.patient_control_number,no account matches this claim (unmatched claim)",
        "2,claim.patient_control_number,no account matches this claim (unmatched claim)",
    ]


@pytest.mark.slow
def test_canary_phi_never_leaves_in_plaintext(tmp_path: Path, init: Callable[..., None]) -> None:
    data = tmp_path / "data"
    init(data)
    canary = aged_row(**{"Guarantor First Name": "Zqxcanaryfirst",
                         "Guarantor Last Name": "Qzvcanarylast", "Guarantor DOB": "07/04/1961",
                         "Cell Phone": "(617) 555-0123", "Email": "zqx.canary@example.com",
                         "Address 1": "77 Canarystreet Rd", "Account No": "CANARY9931",
                         "Patient First Name": "Zqxkid", "Patient Last Name": "Qzvcanarylast"})
    bad = dict(canary, **{"Account No": "CANARY9932", "Patient ID": "P9",
                          "Email": "zqx.canary@@example.com"})
    path = write_csv(tmp_path / "ar.csv", [canary, bad])
    report = tmp_path / "errors.csv"
    result = run("import", "csv", str(path), "--mapping", "generic-aged-receivables",
                 "--data-dir", str(data), "--error-report", str(report),
                 env={"CARECOLLECT_DEBUG": "1"})
    assert result.returncode == 2, result.stderr
    assert "1 rows rejected" in result.stdout
    assert report.read_text().splitlines() == ["row,field,reason",
                                               "2,email,is not a valid e-mail address"]
    assert report.stat().st_mode & 0o777 == 0o600
    # In-process too, with every logger at DEBUG (SQL included) captured.
    logged = _import_in_process_with_debug_logs(data, path)
    haystacks = {
        "stdout": result.stdout, "stderr": result.stderr, "logs": logged,
        **{p.name: p.read_bytes().decode("latin-1") for p in data.rglob("carecollect.db*")},
    }
    for name, text in haystacks.items():
        for needle in CANARIES:
            assert needle not in text, f"{needle} found in {name}"
        assert "Canary" not in text.replace("CANARY", "")  # no fragment either


def _import_in_process_with_debug_logs(data: Path, path: Path) -> str:
    code = f"""
import io, logging, sys
from pathlib import Path
from carecollect.audit import Actor
from carecollect.cli.common import open_context
from carecollect.ingest.csv_import import CsvSource
from carecollect.ingest.mapping import load_mapping
from carecollect.ingest.pipeline import run_import
from carecollect.kit.logging import configure_logging
ctx = open_context(Path({str(data)!r}))
buffer = io.StringIO()
configure_logging("DEBUG", stream=buffer, force=True)
logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
org = ctx.resolve_organization(None)
source = CsvSource(Path({str(path)!r}), load_mapping("generic-aged-receivables"))
source.prescan()
run_import(ctx.db, ctx.organization_keys(org), source.units(), format_name="csv",
           system="generic-pm", actor=Actor.system("test"), dry_run=True)
sys.stdout.write(buffer.getvalue())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "import.batch" in result.stdout  # the logs were captured
    return result.stdout + result.stderr


@pytest.mark.slow
def test_import_killed_mid_file_is_consistent_and_can_be_rerun(
    tmp_path: Path, init: Callable[..., None]
) -> None:
    data, clean = tmp_path / "data", tmp_path / "clean"
    init(data)
    init(clean)
    path = write_csv(tmp_path / "ar.csv", people(150))
    code = f"""
import os, signal
from pathlib import Path
from carecollect.audit import Actor
from carecollect.cli.common import open_context
from carecollect.ingest.csv_import import CsvSource
from carecollect.ingest.mapping import load_mapping
from carecollect.ingest.pipeline import run_import
ctx = open_context(Path({str(data)!r}))
org = ctx.resolve_organization(None)
source = CsvSource(Path({str(path)!r}), load_mapping("generic-aged-receivables"))
source.prescan()
def die(summary):
    if summary.batches == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback handlers
run_import(ctx.db, ctx.organization_keys(org), source.units(), format_name="csv",
           system="generic-pm", actor=Actor.system("test"), batch_size=40, on_batch=die)
"""
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL
    partial = _state(data)
    # Exactly the two committed batches, each complete: 80 rows, nothing half-written.
    assert partial["counts"] == {"guarantor": 80, "patient": 80, "account": 80,
                                 "ledger_entry": 160, "contact_point": 240}
    assert partial["orphans"] == 0
    args = ("import", "csv", str(path), "--mapping", "generic-aged-receivables", "--json")
    rerun = run(*args, "--data-dir", str(data))
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert (summary["created"]["guarantor"], summary["unchanged"]["guarantor"]) == (70, 80)
    _import_in_process(clean, path)  # the same file into a fresh copy, uninterrupted
    assert _state(data) == _state(clean)


def _import_in_process(data: Path, path: Path) -> None:
    from carecollect.audit import Actor
    from carecollect.cli.common import open_context
    from carecollect.ingest.csv_import import CsvSource
    from carecollect.ingest.mapping import load_mapping
    from carecollect.ingest.pipeline import run_import

    ctx = open_context(data)
    try:
        org = ctx.resolve_organization(None)
        source = CsvSource(path, load_mapping("generic-aged-receivables"))
        source.prescan()
        run_import(ctx.db, ctx.organization_keys(org), source.units(), format_name="csv",
                   system="generic-pm", actor=Actor.system("test"))
    finally:
        ctx.close()


def _state(data: Path) -> dict[str, object]:
    """Counts, referential integrity and balances by decrypted account number."""
    from sqlalchemy import func, select, text

    from carecollect.cli.common import open_context
    from carecollect.ledger.models import Account, LedgerEntry
    from carecollect.patient.models import ContactPoint, Guarantor, Patient

    ctx = open_context(data)
    try:
        org = ctx.resolve_organization(None)
        cipher = ctx.organization_keys(org).cipher()
        with ctx.db.tenant_session(org) as s:
            counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                      for m in (Guarantor, Patient, ContactPoint, Account, LedgerEntry)}
            orphans = s.execute(text(
                "SELECT (SELECT count(*) FROM account a LEFT JOIN guarantor g"
                " ON g.id = a.guarantor_id WHERE g.id IS NULL) + (SELECT count(*)"
                " FROM ledger_entry e LEFT JOIN account a ON a.id = e.account_id"
                " WHERE a.id IS NULL)")).scalar()
            sums = dict(s.execute(select(LedgerEntry.account_id,
                                         func.sum(LedgerEntry.amount_cents))
                                  .group_by(LedgerEntry.account_id)).all())
            balances = {cipher.open_row(a, "account_number"): int(sums.get(a.id, 0))
                        for a in s.scalars(select(Account))}
    finally:
        ctx.close()
    return {"counts": counts, "orphans": orphans, "balances": balances}
