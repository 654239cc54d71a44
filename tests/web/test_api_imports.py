"""`/api/v1/imports`: an upload (body or multipart) is refused before anything is stored
when it cannot be an import, or stored sealed and queued; the worker runs it through the
import pipeline and the run shows its status, counts and row errors (never a value)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.api import v1_imports
from carecollect.db import Database
from carecollect.ingest.import_run import IMPORT_JOB, ImportRun
from carecollect.ingest.import_run_tasks import run_import_job
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.worker import Worker
from carecollect.ledger.service import ledger_service
from carecollect.patient.models import Guarantor
from tests.factories import TEST_ACTOR, create_guarantor
from tests.ingest.conftest import AGED_HEADER, aged_row
from tests.web.api_seed import covered_entity
from tests.web.api_world import World, assert_problem, make_world

FHIR = Path(__file__).resolve().parents[1] / "ingest" / "data" / "fhir_bundle.json"
X12 = Path(__file__).resolve().parents[3] / "shared" / "data" / "x12-835" / "managed-care.835"
CANARY_DOB = "13/45/1999"


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    made = make_world(db, tmp_path)
    covered_entity(made.web)
    return made


def run_worker(world: World) -> int:
    registry = TaskRegistry()
    registry.register(IMPORT_JOB, run_import_job, max_attempts=3)
    worker = Worker(
        world.web.db,
        world.web.tenant.manager,
        registry=registry,
        queues=["default"],
        run_scheduler=False,
    )
    return sum(worker.run_once() for _ in range(3))


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AGED_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _stored(world: World, run_id: str) -> ImportRun:
    with world.web.db.tenant_session(world.web.tenant.id) as session:
        row = session.scalars(select(ImportRun).where(ImportRun.id == uuid.UUID(run_id))).one()
        session.expunge(row)
        return row


def _guarantors(world: World) -> int:
    with world.web.db.tenant_session(world.web.tenant.id) as session:
        return len(session.scalars(select(Guarantor)).all())


def test_fhir_bundle_as_the_body(world: World) -> None:
    people = _guarantors(world)
    content = FHIR.read_bytes()
    response = world.call(
        "POST",
        "/api/v1/imports",
        content=content,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 201, response.text
    queued = response.json()
    assert queued["status"] == "queued"
    assert queued["format"] == "fhir"
    assert queued["payload_bytes"] == len(content)
    stored = _stored(world, queued["id"])
    assert stored.payload is not None
    assert stored.job_id is not None
    assert b"Fhirtester" not in bytes(stored.payload.ciphertext)
    assert world.actions("import.queue")[-1]["details"]["bytes"] == len(content)
    assert run_worker(world) == 1
    done = world.call("GET", f"/api/v1/imports/{queued['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["counts"]["rows_imported"] > 0
    assert done["counts"]["created"]["guarantor"] >= 1
    assert done["finished_at"] is not None
    assert _guarantors(world) > people
    assert _stored(world, queued["id"]).payload is None  # the PHI copy is dropped
    assert world.actions("import.run")[-1]["details"]["stage"] == "summary"
    listed = world.call("GET", "/api/v1/imports?status=succeeded").json()["items"]
    assert queued["id"] in [r["id"] for r in listed]
    assert all(r["errors"] is None for r in listed)


def test_csv_as_multipart_with_row_errors_and_no_values(world: World) -> None:
    rows = [
        aged_row(),
        aged_row(
            **{
                "Account No": "A-1003",
                "Guarantor ID": "G3",
                "Patient ID": "P3",
                "Guarantor DOB": CANARY_DOB,
            }
        ),
    ]
    response = world.call(
        "POST",
        "/api/v1/imports",
        files={"file": ("export.csv", _csv(rows), "text/csv")},
        data={"format": "csv", "mapping": "generic-aged-receivables"},
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    assert response.json()["mapping"] == "generic-aged-receivables"
    run_worker(world)
    done = world.call("GET", f"/api/v1/imports/{run_id}")
    body = done.json()
    assert body["status"] == "succeeded", body
    assert body["counts"]["rows_read"] == 2
    assert body["counts"]["rows_imported"] == 1
    assert body["error_count"] == 1
    (error,) = body["errors"]
    assert error["row"] == 2
    assert error["field"] == "guarantor.date_of_birth"
    assert CANARY_DOB not in done.text
    assert "Testperson" not in done.text


@pytest.mark.skipif(not X12.is_file(), reason="shared X12 data not present")
def test_x12_835_as_the_body(world: World) -> None:
    tenant = world.web.tenant
    with world.web.db.tenant_session(tenant.id) as session:
        guarantor = create_guarantor(session, tenant)
        for number in ("5554555444", "8765432112"):
            account = ledger_service.open_account(
                session,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                guarantor_id=guarantor.id,
                account_number=number,
                opened_at=datetime(2002, 1, 1, tzinfo=UTC),
                debt_kind="medical",
            )
            ledger_service.post(
                session,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                account_id=account.id,
                kind="charge",
                amount_cents=120_000,
                posted_at=datetime(2002, 1, 2, tzinfo=UTC),
            )
    response = world.call(
        "POST",
        "/api/v1/imports",
        content=X12.read_bytes(),
        headers={"Content-Type": "application/edi-x12"},
    )
    assert response.status_code == 201, response.text
    run_worker(world)
    body = world.call("GET", f"/api/v1/imports/{response.json()['id']}").json()
    assert body["status"] == "succeeded", body
    assert body["format"] == "x12-835"
    assert body["counts"]["rows_imported"] == 2


def test_a_file_the_parser_refuses_fails_the_run_without_values(world: World) -> None:
    content = b'{"resourceType": "Bundle", "entry": [{"resource": '
    response = world.call(
        "POST", "/api/v1/imports", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201
    run_worker(world)
    body = world.call("GET", f"/api/v1/imports/{response.json()['id']}").json()
    assert body["status"] == "failed"
    assert body["failure"]
    assert "resourceType" not in body["failure"]
    assert _stored(world, body["id"]).payload is None


def test_idempotent_upload(world: World) -> None:
    content = FHIR.read_bytes()
    headers = {"Content-Type": "application/fhir+json", "Idempotency-Key": "imp-1"}
    first = world.call("POST", "/api/v1/imports", content=content, headers=headers)
    before = world.state()
    again = world.call("POST", "/api/v1/imports", content=content, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert world.state() == before
    other = world.call("POST", "/api/v1/imports", content=content + b" ", headers=headers)
    assert "different request" in assert_problem(other, 422)["detail"]
    assert world.state() == before


BAD_UPLOADS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "empty_body",
        {
            "content": b"  \n",
            "headers": {"Content-Type": "text/csv"},
            "params": {"mapping": "generic-aged-receivables"},
        },
        422,
        "empty",
    ),
    (
        "unknown_content_type",
        {"content": b"x", "headers": {"Content-Type": "image/png"}},
        415,
        "multipart field",
    ),
    (
        "plain_text_without_format",
        {"content": b"x", "headers": {"Content-Type": "text/plain"}},
        415,
        "name the format",
    ),
    (
        "csv_without_mapping",
        {"content": b"a,b\n1,2\n", "headers": {"Content-Type": "text/csv"}},
        422,
        "needs mapping",
    ),
    (
        "csv_unknown_mapping",
        {
            "content": b"a,b\n",
            "headers": {"Content-Type": "text/csv"},
            "params": {"mapping": "nope"},
        },
        422,
        "mapping is one of",
    ),
    (
        "mapping_as_a_path",
        {
            "content": b"a,b\n",
            "headers": {"Content-Type": "text/csv"},
            "params": {"mapping": "../../etc/passwd"},
        },
        422,
        "the request is not valid",
    ),
    (
        "mapping_for_fhir",
        {
            "content": b"{}",
            "headers": {"Content-Type": "application/json"},
            "params": {"mapping": "generic-ledger-lines"},
        },
        422,
        "only a CSV import",
    ),
    (
        "unknown_format",
        {"content": b"x", "headers": {"Content-Type": "text/plain"}, "params": {"format": "hl7"}},
        422,
        "the request is not valid",
    ),
    (
        "multipart_without_file",
        {
            "data": {"format": "fhir", "note": "x"},
            "files": {"other": ("a.json", b"{}", "application/json")},
        },
        422,
        "multipart field `file`",
    ),
]


@pytest.mark.parametrize(
    ("request_args", "status", "fragment"),
    [b[1:] for b in BAD_UPLOADS],
    ids=[b[0] for b in BAD_UPLOADS],
)
def test_bad_uploads_store_and_queue_nothing(
    world: World, request_args: dict[str, Any], status: int, fragment: str
) -> None:
    before = world.state()
    response = world.call("POST", "/api/v1/imports", **request_args)
    assert fragment in assert_problem(response, status)["detail"]
    assert world.state() == before


def test_too_large(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v1_imports, "MAX_IMPORT_BYTES", 1000)
    before = world.state()
    response = world.call(
        "POST",
        "/api/v1/imports",
        content=b"{" + b" " * 2000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert "at most 1000 bytes" in assert_problem(response, 413)["detail"]
    assert world.state() == before


def test_no_baa_refuses_before_storing(world: World) -> None:
    covered_entity(world.web, False)
    before = world.state()
    response = world.call(
        "POST",
        "/api/v1/imports",
        content=FHIR.read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert_problem(response, 403)
    assert world.state() == before


def test_unknown_import_is_404(world: World) -> None:
    response = world.call("GET", "/api/v1/imports/00000000-0000-7000-8000-000000000000")
    assert "no such import" in assert_problem(response, 404)["detail"]
    bad = world.call("GET", "/api/v1/imports?status=done")
    assert_problem(bad, 422)
