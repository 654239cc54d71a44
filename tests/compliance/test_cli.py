"""`carecollect compliance check|rules` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from carecollect.cli.compliance import app
from tests.compliance.builders import base_input, merge

CORPUS = Path(__file__).with_name("scenarios.jsonl")


def _line(case_id: str, **patch: object) -> str:
    return json.dumps({"id": case_id, "input": merge(base_input(), patch)})


def test_invalid_lines_give_errors_and_the_rest_is_decided() -> None:
    good = _line("G1")
    unknown_field = json.dumps({"id": "U1", "input": {**base_input(), "surprise": 1}})
    wrong_type = json.dumps({"id": "W1", "input": merge(base_input(),
                                                        {"debt": {"balance_cents": "845"}})})
    naive_time = json.dumps({"id": "N1", "input": merge(base_input(), {
        "proposed_action": {"time": "2026-03-10T10:00:00"}})})
    impossible = json.dumps({"id": "I1", "input": merge(base_input(), {
        "as_of": "2026-02-30T10:00:00-05:00"})})
    bad_zone = json.dumps({"id": "Z1", "input": merge(base_input(), {
        "debtor": {"mailing_tz": "Mars/Olympus"}})})
    phi_value = json.dumps({"id": "P1", "input": merge(base_input(), {
        "debtor": {"zip": 12207}})})
    text = "\n".join([good, "{not json", unknown_field, wrong_type, naive_time, impossible,
                      bad_zone, phi_value, "", _line("G2")]) + "\n"
    result = CliRunner().invoke(app, ["check", "-"], input=text)
    assert result.exit_code == 2
    out = [json.loads(x) for x in result.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["G1", None, "U1", "W1", "N1", "I1", "Z1", "P1", "G2"]
    assert out[0]["decision"] == "allow"
    assert out[-1]["decision"] == "allow"
    errors = out[1:-1]
    assert all(set(o) == {"id", "line", "error"} for o in errors)
    assert "input.surprise" in errors[1]["error"]
    assert "input.debt.balance_cents" in errors[2]["error"]
    assert "timezone" in errors[3]["error"]
    assert "input.as_of" in errors[4]["error"]
    assert "time zone" in errors[5]["error"]
    assert "12207" not in errors[6]["error"]  # input values (possible PHI) are never echoed
    assert [o["line"] for o in errors] == [2, 3, 4, 5, 6, 7, 8]


def test_expected_fields_are_ignored_and_output_is_deterministic() -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["check", str(CORPUS)])
    second = runner.invoke(app, ["check", str(CORPUS)])
    assert first.exit_code == 0
    assert first.stdout == second.stdout


def test_missing_file_is_bad_input() -> None:
    result = CliRunner().invoke(app, ["check", "/nonexistent/scenarios.jsonl"])
    assert result.exit_code == 2


def test_rules_json_lists_every_catalog_id() -> None:
    result = CliRunner().invoke(app, ["rules", "--json"])
    assert result.exit_code == 0
    rules = json.loads(result.stdout)
    ids = {r["id"] for r in rules}
    # The catalog beside the project (../shared/docs), as CI lays it out.
    catalog = Path(__file__).resolve().parents[3] / "shared" / "docs" / "RULES.md"
    import re

    wanted = set(re.findall(r"^\| ((?:REGF|TCPA|STATE|HIPAA|MED|PLAT)-[A-Z0-9-]+)",
                            catalog.read_text(encoding="utf-8"), re.MULTILINE))
    assert len(wanted) > 100
    assert wanted - {i.rstrip(" ★") for i in ids} == set()
    sample = next(r for r in rules if r["id"] == "TCPA-REVOKE-ALL")
    assert sample["effective_from"] == "2027-01-31"
    assert sample["verification"] == "S"
    assert set(sample) >= {"citation", "jurisdiction", "effective_to", "profiles", "kind"}


def test_rules_text_and_overlay_via_real_binary(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("carecollect")
    out = subprocess.run([str(exe), "compliance", "rules"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.splitlines()[0].startswith("PLAT-TIME-BOUNDARY")
    overlay = tmp_path / "overlay.json"
    overlay.write_text(json.dumps({"quiet_weekdays": ["tue"]}), encoding="utf-8")
    run = subprocess.run([str(exe), "compliance", "check", "--overlay", str(overlay), "-"],
                         input=_line("Q1") + "\n", capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    decided = json.loads(run.stdout)
    assert decided["decision"] == "block"
    assert decided["reasons"] == ["STATE-SUNDAY", "ORG-QUIET-DAYS"]
    assert decided["next_allowed_at"] == "2026-03-11T08:00:00-04:00"
    overlay.write_text(json.dumps({"window_start": "07:00"}), encoding="utf-8")
    loose = subprocess.run([str(exe), "compliance", "check", "--overlay", str(overlay), "-"],
                           input=_line("Q2") + "\n", capture_output=True, text=True,
                           check=False)
    assert loose.returncode == 2
    assert "08:00" in loose.stderr
