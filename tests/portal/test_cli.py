"""`carecollect portal link` and `revoke` through the real entry point."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from carecollect.audit import Actor
from carecollect.cli.common import open_context
from carecollect.patient.schemas import GuarantorCreate
from carecollect.patient.service import patient_service
from carecollect.portal.models import PortalLink

ENV_KEYS = ("CARECOLLECT_DATA_DIR", "CARECOLLECT_DATABASE_URL", "CARECOLLECT_KEY_PROVIDER")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_KEYS and not k.startswith("CARECOLLECT_PORTAL_")}
    return subprocess.run([sys.executable, "-m", "carecollect.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("portal-cli") / "data"
    result = run("init", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    return data


def _guarantor(data_dir: Path) -> uuid.UUID:
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(None)
        keys = ctx.organization_keys(org_id)
        with ctx.db.tenant_session(org_id) as session:
            row = patient_service.create_guarantor(
                session, keys=keys, actor=Actor.system("test"),
                data=GuarantorCreate(first_name="Cli", last_name="Testperson"))
            return row.id
    finally:
        ctx.close()


def _links(data_dir: Path) -> list[PortalLink]:
    ctx = open_context(data_dir)
    try:
        with ctx.db.system_session() as session:
            return list(session.scalars(select(PortalLink)))
    finally:
        ctx.close()


def test_link_then_revoke(data_dir: Path) -> None:
    guarantor = _guarantor(data_dir)
    result = run("portal", "link", str(guarantor), "--data-dir", str(data_dir), "--ttl-days",
                 "7", "--base-url", "https://billing.example.org/", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["url"].startswith("https://billing.example.org/pay/")
    token = out["url"].rsplit("/", 1)[1]
    assert len(token) == 43
    rows = [r for r in _links(data_dir) if str(r.id) == out["link_id"]]
    assert len(rows) == 1
    assert rows[0].guarantor_id == guarantor
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert rows[0].created_by == "system:cli.portal"
    assert (rows[0].expires_at - rows[0].created_at).days == 7
    assert "Testperson" not in result.stdout
    revoked = run("portal", "revoke", out["link_id"], "--data-dir", str(data_dir))
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip() == f"revoked {out['link_id']}"
    assert [r.revoked_at is not None for r in _links(data_dir)
            if str(r.id) == out["link_id"]] == [True]


@pytest.mark.parametrize(("args", "message"), [
    (("link", "not-a-uuid"), "error: GUARANTOR_ID must be a UUID"),
    (("link", "00000000-0000-7000-8000-000000000999"), "error: no such guarantor"),
    (("link", "00000000-0000-7000-8000-000000000999", "--ttl-days", "0"),
     "error: the link lifetime must be positive"),
    (("revoke", "00000000-0000-7000-8000-000000000999"), "error: no such link"),
])
def test_bad_input_is_one_clear_line(data_dir: Path, args: tuple[str, ...],
                                     message: str) -> None:
    before = len(_links(data_dir))
    result = run("portal", *args, "--data-dir", str(data_dir))
    assert result.returncode in (1, 2)
    assert [line for line in result.stderr.splitlines() if line.strip()] == [message]
    assert result.stdout == ""
    assert len(_links(data_dir)) == before
