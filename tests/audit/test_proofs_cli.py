"""Inclusion proofs, the audit CLI and the exports, end to end through the commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecollect.audit.export import export_events
from carecollect.audit.keys import create_signing_key, default_verifier
from carecollect.audit.verification import check_proof, prove
from carecollect.cli.audit import audit_app
from carecollect.db import Database
from carecollect.errors import AppError
from carecollect.kit.audit.checkpoint import CheckpointError
from carecollect.kit.audit.merkle import ProofError
from tests.audit.helpers import ORG, key_path, record_events, run_integrator

runner = CliRunner()


@pytest.fixture
def cli_env(db: Database, data_dir: Path, database_url: str) -> dict[str, str]:
    record_events(db, 13)
    run_integrator(db, data_dir, batch_size=5)
    return {"CARECOLLECT_DATA_DIR": str(data_dir), "CARECOLLECT_DATABASE_URL": database_url}


def invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(audit_app, list(args), env=env)


def code(result) -> int:  # type: ignore[no-untyped-def]
    # main() turns an AppError into its exit code; the runner sees the raw exception.
    if isinstance(result.exception, AppError):
        return result.exception.exit_code
    return int(result.exit_code)


def test_prove_and_check_every_entry(cli_env: dict[str, str], db: Database, data_dir: Path) -> None:
    verifier = default_verifier(key_path(data_dir))
    for seq in range(13):
        document = prove(db.engine, seq, verifier=verifier)
        assert document["tree_size"] == 13
        assert document["index"] == seq
        checked = check_proof(json.loads(json.dumps(document)))
        assert (checked.seq, checked.tree_size) == (seq, 13)
        assert checked.event["event"]["action"] in ("patient.read", "patient.update")


def test_cli_verify_prove_check_proof(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = invoke(cli_env, "verify", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    assert json.loads(result.stdout)["tree_size"] == 13
    proof_file = tmp_path / "proof.json"
    result = invoke(cli_env, "prove", "7", "--output", str(proof_file))
    assert result.exit_code == 0, result.output
    result = runner.invoke(audit_app, ["check-proof", str(proof_file), "--json"], env={})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["seq"] == 7


def test_check_proof_bad_inputs(cli_env: dict[str, str], tmp_path: Path) -> None:
    proof_file = tmp_path / "proof.json"
    assert invoke(cli_env, "prove", "3", "--output", str(proof_file)).exit_code == 0
    document = json.loads(proof_file.read_text())
    before = sorted(p.name for p in tmp_path.iterdir())

    # A wrong public key: another installation's key.
    other = create_signing_key(tmp_path / "other" / "audit-signing.key")
    wrong_key = dict(document, public_key=other.encode())
    bad = tmp_path / "wrong-key.json"
    bad.write_text(json.dumps(wrong_key))
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert result.exit_code == 1
    assert "not signed by the given public key" in result.stderr
    result = runner.invoke(audit_app, ["check-proof", str(proof_file), "--public-key",
                                       str(tmp_path / "other" / "audit-signing.pub")])
    assert result.exit_code == 1
    assert "not the trusted public key" in result.stderr

    # A proof for another tree: the same event against a different (later) checkpoint.
    other_tree = dict(document, tree_size=14)
    bad.write_text(json.dumps(other_tree))
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert result.exit_code == 1
    assert "tree size" in result.stderr
    flipped = dict(document, proof=[h[:-1] + ("0" if h[-1] != "0" else "1")
                                    for h in document["proof"]])
    bad.write_text(json.dumps(flipped))
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert result.exit_code == 1
    assert "does not lead to the checkpoint root" in result.stderr

    # A corrupt checkpoint inside the proof, and a file that is not a proof at all.
    bad.write_text(json.dumps(dict(document, checkpoint=document["checkpoint"].replace(
        "\n13\n", "\n12\n"))))
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert result.exit_code == 1
    assert "signature does not verify" in result.stderr
    bad.write_text("{not json")
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert code(result) == 2
    bad.write_text(json.dumps({"format": "something else"}))
    result = runner.invoke(audit_app, ["check-proof", str(bad)])
    assert code(result) == 2
    # Nothing was written besides the files this test wrote itself.
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted([*before, "other", "wrong-key.json"])


def test_check_proof_library_errors(cli_env: dict[str, str], db: Database, data_dir: Path) -> None:
    document = prove(db.engine, 2, verifier=default_verifier(key_path(data_dir)))
    with pytest.raises(ProofError):
        check_proof(dict(document, index=3))
    with pytest.raises(CheckpointError):
        check_proof(dict(document, public_key=document["public_key"][:-4] + "AAA="))


def test_cli_verify_reports_tampering_and_exits_1(
    cli_env: dict[str, str], data_dir: Path
) -> None:
    path = data_dir / "checkpoints" / "checkpoint-000000000000010.txt"
    path.write_text("garbage\n", encoding="utf-8")
    result = invoke(cli_env, "verify")
    assert result.exit_code == 1
    assert "NOT intact" in result.stdout
    assert "checkpoint-000000000000010.txt" in result.stdout
    result = invoke(cli_env, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["kind"] == "checkpoint"


def test_cli_verify_with_wrong_public_key(cli_env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "k" / "audit-signing.key"
    create_signing_key(other)
    result = invoke(cli_env, "verify", "--json", "--public-key", str(other.with_suffix(".pub")))
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert {p["kind"] for p in problems} == {"checkpoint", "unsigned"}


def test_prove_unknown_seq(cli_env: dict[str, str]) -> None:
    result = invoke(cli_env, "prove", "13")
    assert code(result) == 1


def test_export_jsonl_and_fhir(cli_env: dict[str, str], db: Database, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = invoke(cli_env, "export", "--format", "jsonl", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(13))
    assert lines[1]["action"] == "patient.read"
    assert lines[1]["details"] == {"count": 1, "fields": ["last_name"]}
    assert lines[1]["organization_id"] == str(ORG)

    result = invoke(cli_env, "export", "--format", "fhir")
    assert result.exit_code == 0, result.output
    resources = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(resources) == 13
    first = resources[0]
    assert first["resourceType"] == "AuditEvent"
    assert first["action"] == "U"
    assert resources[1]["action"] == "R"
    assert first["outcome"] == "0"
    assert first["entity"][0]["role"]["code"] == "1"
    assert first["entity"][0]["what"]["identifier"]["value"] == lines[0]["patient_id"]
    assert first["agent"][0]["who"]["identifier"]["value"] == lines[0]["actor"]["id"]
    from fhir.resources.R4B.auditevent import AuditEvent

    for resource in resources:
        AuditEvent.model_validate(resource)

    result = invoke(cli_env, "export", "--since", "2999-01-01")
    assert (result.exit_code, result.stdout) == (0, "")
    result = invoke(cli_env, "export", "--format", "xml")
    assert code(result) == 2
    result = invoke(cli_env, "export", "--since", "yesterday")
    assert code(result) == 2


def test_export_records_an_audit_event(cli_env: dict[str, str], db: Database) -> None:
    assert invoke(cli_env, "export").exit_code == 0
    with db.system_session() as session:
        events = list(export_events(session))
    assert len(events) == 13  # the export event is pending until the next integration
    with db.engine.connect() as conn:
        body = conn.exec_driver_sql(
            "SELECT body FROM audit_event ORDER BY ordinal DESC LIMIT 1").scalar()
    assert '"action":"audit.export"' in body
    assert '"details":{"count":13,"format":"jsonl"}' in body


def test_signing_key_file_mode(data_dir: Path) -> None:
    assert os.stat(key_path(data_dir)).st_mode & 0o777 == 0o600
