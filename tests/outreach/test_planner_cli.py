"""`carecollect outreach` through the real entry point."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.cli.test_core_commands import one_error_line, run
from tests.consent.pdftext import pdf_text
from tests.factories import Tenant
from tests.outreach.helpers import make_debtor


@pytest.mark.slow
def test_plan_dry_run_then_real_run_and_evidence(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--data-dir", str(data)).returncode == 0
    installed = run("outreach", "cadences", "install-defaults", "--data-dir", str(data))
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.strip() == (
        "installed 2 cadence(s): dental_plan_broken, dental_standard")

    from carecollect.cli.common import open_context

    ctx = open_context(data)
    org_id = ctx.resolve_organization(None)
    tenant = Tenant(org_id, ctx.organization_keys(org_id), ctx.keys)
    with ctx.db.tenant_session(org_id) as s:
        debtor = make_debtor(s, tenant, n=1, language="es")
        make_debtor(s, tenant, n=2, balance_cents=300)  # below the $10 floor
    ctx.close()

    at = "2026-05-04T06:00:00-04:00"
    dry = run("outreach", "plan", "--at", at, "--dry-run", "--json", "--data-dir", str(data))
    assert dry.returncode == 0, dry.stderr
    body = json.loads(dry.stdout)
    assert body["dry_run"] is True
    assert body["counts"]["created"] == 0
    decisions = body["decisions"]
    assert len(decisions) == 1  # enrolled inside the dry run, then rolled back
    row = decisions[0]
    assert row["campaign"] == "dental_standard"
    assert row["account_id"] == str(debtor.account_id)
    if row["cohort"] == "treatment":
        assert (row["outcome"], row["channel"], row["language"]) == ("send", "email", "es")
        assert row["scheduled_for"] == "2026-05-04T10:00:00-04:00"
    else:
        assert row["outcome"] == "holdout"

    out = tmp_path / "plan.csv"
    real = run("outreach", "plan", "--at", at, "--csv", str(out), "--data-dir", str(data))
    assert real.returncode == 0, real.stderr
    assert "Outreach plan at 2026-05-04T10:00:00+00:00" in real.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["account_id"] for r in rows] == [str(debtor.account_id)]
    again = run("outreach", "plan", "--at", at, "--json", "--data-dir", str(data))
    assert json.loads(again.stdout)["decisions"] == []  # advanced: nothing due tonight

    evidence_dir = tmp_path / "evidence"
    exported = run("outreach", "evidence", str(debtor.guarantor_id), "--out",
                   str(evidence_dir), "--data-dir", str(data))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads((evidence_dir / f"consent-evidence-{debtor.guarantor_id}.json")
                     .read_text(encoding="utf-8"))
    assert doc["guarantor"]["name"] == "Test1 Testperson"
    pdf = (evidence_dir / f"consent-evidence-{debtor.guarantor_id}.pdf").read_bytes()
    assert "Consent and contact evidence" in pdf_text(pdf)


@pytest.mark.slow
def test_bad_inputs_give_one_line_and_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--data-dir", str(data)).returncode == 0
    naive = run("outreach", "plan", "--at", "2026-05-04T06:00:00", "--data-dir", str(data))
    assert naive.returncode == 2
    assert one_error_line(naive) == "error: --at needs a UTC offset (naive times are ambiguous)"
    bad = run("outreach", "evidence", "not-a-uuid", "--out", str(tmp_path),
              "--data-dir", str(data))
    assert bad.returncode == 2
    assert one_error_line(bad) == "error: the guarantor id must be a UUID"
