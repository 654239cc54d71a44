"""`carecollect compliance`: decide scenarios (RULES.md §0.3) and list the rule catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from carecollect.cli.common import DataDirOption
from carecollect.cli.output import emit, fail

app = typer.Typer(name="compliance", help="The compliance engine (RULES.md as code).",
                  no_args_is_help=True)


def _load_overlay(path: Path | None) -> object | None:
    from carecollect.compliance.overlay import OrgOverlay, OverlayError

    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise OverlayError("the overlay must be a JSON object")
        return OrgOverlay.from_json(data)
    except (OSError, json.JSONDecodeError, OverlayError) as exc:
        fail(f"overlay: {exc.__class__.__name__}: {exc}")
        raise typer.Exit(2) from None


def decide_stream(lines: TextIO, overlay: object | None = None) -> bool:
    """Decide every line; write one JSON line per input line. True when all were valid."""
    from carecollect.compliance.engine import evaluate
    from carecollect.compliance.overlay import OrgOverlay
    from carecollect.compliance.scenario import ScenarioError, parse_scenario

    org = overlay if isinstance(overlay, OrgOverlay) else None
    all_valid = True
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            scenario = parse_scenario(line)
        except ScenarioError as exc:
            all_valid = False
            emit(json.dumps({"id": exc.scenario_id, "line": number, "error": exc.message}))
            continue
        decision = evaluate(scenario.input, org)
        emit(json.dumps(decision.as_json(scenario.id)))
    return all_valid


@app.command("check")
def check(
    source: Annotated[str, typer.Argument(help="Scenario file (JSON lines) or - for stdin.")]
    = "-",
    overlay: Annotated[Path | None, typer.Option(
        "--overlay", help="Organization overlay (JSON); it can only tighten the rules.",
        show_default=False)] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Decide each scenario: allow, block or allow_with_modification, with reasons."""
    org = _load_overlay(overlay)
    if source == "-":
        ok = decide_stream(sys.stdin, org)
    else:
        path = Path(source)
        try:
            handle = path.open(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read scenario file: {exc.strerror}")
            raise typer.Exit(2) from None
        with handle:
            ok = decide_stream(handle, org)
    if not ok:
        raise typer.Exit(2)


@app.command("rules")
def rules(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """List every rule with citation, verification tag, jurisdiction and effective dates."""
    from carecollect.compliance.registry import RULES

    if as_json:
        emit(json.dumps([r.as_json() for r in RULES], indent=None))
        return
    for r in RULES:
        dates = ""
        if r.effective_from or r.effective_to:
            dates = f"  [{r.effective_from or ''}..{r.effective_to or ''})"
        emit(f"{r.id:<30} {r.verification:<2} {r.jurisdiction:<4} {r.kind:<13} "
             f"{r.scope:<9} {r.citation}{dates}")


@app.command("portfolio")
def portfolio(
    source: Annotated[Path, typer.Argument(
        help="Portfolio file: SQLite in the layout of compliance/batch_sqlite.py.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the decisions here (.parquet, else JSON lines); "
        "default: JSON lines on stdout.", show_default=False)] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Decide every account of a portfolio file at once (the batch path): one decision per
    account with its reasons and next allowed instant (UTC)."""
    import polars as pl

    from carecollect.compliance.batch import evaluate_portfolio
    from carecollect.compliance.batch_sqlite import PortfolioFileError, read_portfolio

    try:
        accounts, events = read_portfolio(source)
    except (OSError, PortfolioFileError) as exc:
        fail(f"cannot read portfolio file: {exc.__class__.__name__}: {exc}")
        raise typer.Exit(2) from None
    decisions = evaluate_portfolio(accounts, events).select(
        pl.col("account_id").alias("account_key"), "decision", "reasons", "modification",
        pl.col("next_allowed_at").dt.to_string("%Y-%m-%dT%H:%M:%S%:z"))
    if out is not None and out.suffix == ".parquet":
        decisions.write_parquet(out)
    elif out is not None:
        decisions.write_ndjson(out)
    elif decisions.height:
        emit(decisions.write_ndjson().rstrip("\n"))
