"""`carecollect import {csv,synthea,fhir,x12-835} PATH`: get a practice's receivables in.

Each command checks the BAA gate first (nothing is read before PHI may be accepted),
checks the whole file, then imports it in batches with a progress bar on a terminal and
prints a summary (`--json` for machines). Row errors go to the report file named by
`--error-report` only: row numbers point into a PHI-bearing file, so the report is written
where the user asks and nowhere else. Exit codes: 0 everything imported, 2 some rows
rejected (the rest imported) or the file is not what it claims to be, 1 other failures.
"""

from __future__ import annotations

import csv
import os
import sys
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from carecollect.cli.common import Context, DataDirOption, OrganizationOption, open_context
from carecollect.cli.output import emit, emit_json, err_console

app = typer.Typer(
    name="import",
    help="Import receivables: CSV with a mapping, Synthea CSV, FHIR R4, X12 835.",
    no_args_is_help=True,
)

PathArgument = Annotated[Path, typer.Argument(help="The file (or Synthea directory) to import.")]
MappingOption = Annotated[
    str | None,
    typer.Option("--mapping", help="Mapping file (TOML), or the name of a shipped mapping."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check and convert everything, store nothing.")
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--error-report",
        help="Write rejected rows (row, field, reason) to this CSV file. It may point at PHI: "
        "keep it where the import file is kept.",
    ),
]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, max=100_000, hidden=True)]


class _Run:
    """What every import command shares: context, organization, keys, zone."""

    def __init__(self, data_dir: Path | None, organization: str | None) -> None:
        from carecollect.ingest.pipeline import require_baa
        from carecollect.tenant.models import Organization

        self.ctx: Context = open_context(data_dir)
        self.ctx.db.check_connection()
        self.org_id: uuid.UUID = self.ctx.resolve_organization(organization)
        require_baa(self.ctx.db, self.org_id)
        with self.ctx.db.system_session() as session:
            org = session.get(Organization, self.org_id)
            self.zone = org.timezone if org is not None else "UTC"
        self.keys = self.ctx.organization_keys(self.org_id)

    def close(self) -> None:
        self.ctx.close()


def _progress(total: int, enabled: bool) -> tuple[ExitStack, Callable[[Any], None]]:
    """A Rich progress bar on stderr when it is a terminal (and not --json)."""
    stack = ExitStack()
    if not enabled or not sys.stderr.isatty():
        return stack, lambda _summary: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = stack.enter_context(
        Progress("[progress.description]{task.description}", BarColumn(),
                 MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                 transient=True)
    )
    task = progress.add_task("importing", total=total or None)

    def advance(summary: Any) -> None:
        progress.update(task, completed=summary.rows_read)

    return stack, advance


def _execute(
    run: _Run,
    units: Iterable[Any],
    *,
    total: int,
    format_name: str,
    system: str,
    json_output: bool,
    dry_run: bool,
    error_report: Path | None,
    batch_size: int,
    extra: Callable[[], dict[str, int]] | None = None,
) -> None:
    from carecollect.audit import Actor
    from carecollect.ingest.errors import RowError
    from carecollect.ingest.pipeline import run_import

    with ExitStack() as stack:
        on_error: Callable[[RowError], None] | None = None
        if error_report is not None:
            # Owner-only, like the keyring: row numbers point into a PHI-bearing file.
            descriptor = os.open(error_report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            handle = stack.enter_context(open(descriptor, "w", encoding="utf-8", newline=""))
            writer = csv.writer(handle)
            writer.writerow(["row", "field", "reason"])

            def on_error(error: RowError) -> None:
                writer.writerow([error.row, error.field, error.reason])

        bar, advance = _progress(total, not json_output)
        with bar:
            summary = run_import(
                run.ctx.db, run.keys, units, format_name=format_name, system=system,
                actor=Actor.system("cli.import"), dry_run=dry_run, batch_size=batch_size,
                on_error=on_error, on_batch=advance, check_baa=False,
            )
    if extra is not None:
        summary.noted.update({k: v for k, v in extra().items() if v})
    if json_output:
        emit_json(summary.as_dict() | {"error_report": str(error_report) if error_report
                                       else None})
    else:
        for line in summary.lines():
            emit(line)
        if summary.rows_rejected:
            where = f"see {error_report}" if error_report else \
                "rerun with --error-report FILE for row numbers and reasons"
            emit(f"{summary.rows_rejected} rows rejected: {where}")
    if summary.rows_rejected:
        raise typer.Exit(2)


@app.command("csv")
def import_csv(
    path: PathArgument,
    mapping: MappingOption = None,
    organization: OrganizationOption = None,
    json_output: JsonOption = False,
    dry_run: DryRunOption = False,
    error_report: ReportOption = None,
    batch_size: BatchOption = 2000,
    data_dir: DataDirOption = None,
) -> None:
    """A CSV export read through a mapping file (see docs/INGEST.md)."""
    from carecollect.errors import BadInput
    from carecollect.ingest.csv_import import CsvSource
    from carecollect.ingest.mapping import builtin_mappings, load_mapping

    if mapping is None:
        raise BadInput("a CSV import needs --mapping FILE (or one of: "
                       f"{', '.join(builtin_mappings())})")
    spec = load_mapping(mapping)
    _import(data_dir, organization, "csv", spec.system,
            lambda run: CsvSource(path, spec, practice_zone=run.zone),
            _Flags(json_output, dry_run, error_report, batch_size))


@app.command("synthea")
def import_synthea(
    path: PathArgument,
    mapping: MappingOption = None,
    organization: OrganizationOption = None,
    json_output: JsonOption = False,
    dry_run: DryRunOption = False,
    error_report: ReportOption = None,
    batch_size: BatchOption = 2000,
    data_dir: DataDirOption = None,
) -> None:
    """A Synthea CSV export directory: patients and their patient-responsibility balances."""
    from carecollect.ingest.synthea import SYSTEM, SyntheaSource

    _ = mapping  # accepted for a uniform interface; Synthea's layout is fixed
    _import(data_dir, organization, "synthea", SYSTEM,
            lambda run: SyntheaSource(path, practice_zone=run.zone),
            _Flags(json_output, dry_run, error_report, batch_size))


@app.command("fhir")
def import_fhir(
    path: PathArgument,
    mapping: MappingOption = None,
    organization: OrganizationOption = None,
    json_output: JsonOption = False,
    dry_run: DryRunOption = False,
    error_report: ReportOption = None,
    batch_size: BatchOption = 2000,
    data_dir: DataDirOption = None,
) -> None:
    """FHIR R4 resources: a Bundle or NDJSON."""
    from carecollect.ingest.fhir import SYSTEM, FhirSource

    _ = mapping
    _import(data_dir, organization, "fhir", SYSTEM,
            lambda run: FhirSource(path, practice_zone=run.zone),
            _Flags(json_output, dry_run, error_report, batch_size))


@app.command("x12-835")
def import_x12_835(
    path: PathArgument,
    mapping: MappingOption = None,
    organization: OrganizationOption = None,
    json_output: JsonOption = False,
    dry_run: DryRunOption = False,
    error_report: ReportOption = None,
    batch_size: BatchOption = 2000,
    data_dir: DataDirOption = None,
) -> None:
    """An X12 835 remittance: payments and adjustments posted to matching accounts."""
    from carecollect.ingest.x12 import SYSTEM, X12Options, X12Source

    options = X12Options.from_file(Path(mapping) if mapping else None)
    _import(data_dir, organization, "x12-835", SYSTEM,
            lambda run: X12Source(path, options, practice_zone=run.zone),
            _Flags(json_output, dry_run, error_report, batch_size),
            units_of=lambda run, source: source.units(run.ctx.db, run.keys),
            extra=lambda source: {"claims_unmatched": source.unmatched})


@dataclass(frozen=True)
class _Flags:
    """The output and batching options every import command takes."""

    json_output: bool
    dry_run: bool
    error_report: Path | None
    batch_size: int


def _import(
    data_dir: Path | None,
    organization: str | None,
    format_name: str,
    system: str,
    make_source: Callable[[_Run], Any],
    flags: _Flags,
    *,
    units_of: Callable[[_Run, Any], Iterable[Any]] | None = None,
    extra: Callable[[Any], dict[str, int]] | None = None,
) -> None:
    """Open the run (BAA gate first), check the whole file, import it, close the run."""
    run = _Run(data_dir, organization)
    try:
        source = make_source(run)
        source.prescan()
        units = units_of(run, source) if units_of is not None else source.units()
        _execute(run, units, total=source.total_rows, format_name=format_name,
                 system=system, json_output=flags.json_output, dry_run=flags.dry_run,
                 error_report=flags.error_report, batch_size=flags.batch_size,
                 extra=(lambda: extra(source)) if extra is not None else None)
    finally:
        run.close()
