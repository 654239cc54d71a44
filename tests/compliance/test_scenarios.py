"""Runs the real CLI over the scenario corpus and compares every decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecollect.cli.compliance import app

CORPUS = Path(__file__).with_name("scenarios.jsonl")
KEYS = ["id", "decision", "reasons", "modification", "next_allowed_at", "explanation"]


@pytest.fixture(scope="module")
def decisions() -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(app, ["check", str(CORPUS)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(list(line) == KEYS for line in lines)
    return {str(line["id"]): line for line in lines}


def _cases() -> list[dict[str, object]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_corpus_is_current() -> None:
    from tests.compliance.corpus import CASES

    assert [c["id"] for c in _cases()] == [c[0] for c in CASES]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: str(c["id"]))
def test_scenario(case: dict[str, object], decisions: dict[str, dict[str, object]]) -> None:
    got = decisions[str(case["id"])]
    assert got["decision"] == case["expected"]
    reasons = got["reasons"]
    assert isinstance(reasons, list)
    assert set(case["expected_reasons"]) <= set(reasons)  # type: ignore[arg-type]
    if case["expected"] == "allow":
        assert reasons == []
    assert got["modification"] == case["expected_modification"]
    assert got["next_allowed_at"] == case["expected_next_allowed_at"]


def test_every_event_rule_is_exercised() -> None:
    from carecollect.compliance.registry import RULES

    exercised = {rid for c in _cases() for rid in c["rule_ids"]}  # type: ignore[attr-defined]
    informational = {"TCPA-HC-EXEMPT-NA", "STATE-SUNDAY", "REGF-CALL-EXCLUSIONS"}
    event_rules = {r.id for r in RULES if r.kind == "event" and not r.id.startswith("ORG-")}
    missing = event_rules - exercised - informational
    assert missing == set()
