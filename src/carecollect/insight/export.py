"""CSV and PDF exports of insights reports (aggregates only, never PHI).

* CSV: one header row (the report's column names, money in integer cents as the report
  holds it) and one row per report row. Text cells that a spreadsheet would run as a
  formula are defused (OWASP "CSV injection"); numbers are written as numbers.
* PDF (ReportLab): the report title, the filters it was computed with, its chart (drawn
  with ReportLab's own chart classes), its table (money shown as dollars), its notes and
  the generation time. Several reports can share one
  document (the monthly e-mail attaches the headline set).

`export_report` is the audited entry point the staff app calls: it builds the report
through the insights service, renders it and records `insight.export` with the report
key, the format and the row count in the caller's transaction (the boundary commits).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.insight.schemas import Cell, ChartSpec, Report, ReportFilters
from carecollect.outreach.cadence_models import Campaign
from carecollect.tenant.models import Location

ExportFormat = Literal["csv", "pdf"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The staff app's palette (Chart.js defaults), so the PDF looks like the dashboard.
_PALETTE = [colors.HexColor(c) for c in (
    "#36a2eb", "#ff6384", "#ff9f40", "#ffcd56", "#4bc0c0", "#9966ff", "#c9cbcf")]
_MAX_AXIS_LABELS = 12


@dataclass(frozen=True)
class ExportedFile:
    filename: str
    media_type: str
    content: bytes
    rows: int


def csv_safe(value: Cell) -> str | int | float:
    """A cell as the CSV writer should see it: numbers untouched (a number cannot be a
    formula), text starting with = + - @ TAB CR prefixed with a quote (OWASP)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def report_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(c) for c in report.columns])
    for row in report.rows:
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue().encode("utf-8")


def column_label(column: str) -> str:
    """`collected_cents` -> "Collected ($)", `recovery_rate` -> "Recovery rate"."""
    if column.endswith("_cents"):
        return column.removesuffix("_cents").replace("_", " ").capitalize() + " ($)"
    return column.replace("_", " ").capitalize()


def format_cell(column: str, value: Cell) -> str:
    if value is None:
        return ""
    if column.endswith("_cents") and isinstance(value, int | float):
        cents = round(value)
        sign = "-" if cents < 0 else ""
        cents = abs(cents)
        return f"{sign}${cents // 100:,}.{cents % 100:02d}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def describe_filters(session: Session, filters: ReportFilters) -> list[tuple[str, str]]:
    """Human labels of the filters (location and campaign names are not PHI)."""
    lines = [("Period", f"{filters.period_start.isoformat()} to "
                        f"{filters.period_end.isoformat()} (end exclusive)")]
    location = session.get(Location, filters.location_id) if filters.location_id else None
    lines.append(("Location", location.name if location is not None else "All locations"))
    campaign = session.get(Campaign, filters.campaign_id) if filters.campaign_id else None
    lines.append(("Campaign", campaign.name if campaign is not None else "All campaigns"))
    return lines


def chart_drawing(spec: ChartSpec, *, width: float, height: float = 150) -> Drawing | None:
    """A ReportLab drawing of a report chart (None when there is nothing to draw)."""
    series = [list(d.values) for d in spec.datasets if d.values]
    if not spec.labels or not series:
        return None
    drawing = Drawing(width, height + 24)
    legend = Legend()
    legend.x, legend.y = 0, height + 18
    legend.fontSize = 6
    legend.columnMaximum = 1
    legend.deltax = 90
    legend.alignment = "right"
    legend.colorNamePairs = [(_PALETTE[i % len(_PALETTE)], d.label)
                             for i, d in enumerate(spec.datasets)]
    if spec.kind == "doughnut":
        pie = Pie()
        pie.x, pie.y, pie.width, pie.height = 20, 0, height - 10, height - 10
        if not any(v > 0 for v in series[0]):
            return None  # an all-zero pie would show one misleading full slice
        pie.data = [max(v, 0.0) for v in series[0]]
        pie.labels = None
        for i in range(len(pie.data)):
            pie.slices[i].fillColor = _PALETTE[i % len(_PALETTE)]
        legend.colorNamePairs = [(_PALETTE[i % len(_PALETTE)], label)
                                 for i, label in enumerate(spec.labels)]
        legend.x, legend.y = height + 20, height - 10
        drawing.add(pie)
        drawing.add(legend)
        return drawing
    plot: VerticalBarChart | HorizontalLineChart = (
        HorizontalLineChart() if spec.kind == "line" else VerticalBarChart())
    plot.x, plot.y, plot.width, plot.height = 40, 20, width - 50, height - 30
    plot.data = [[float(v) for v in values] for values in series]
    step = max(1, len(spec.labels) // _MAX_AXIS_LABELS)
    plot.categoryAxis.categoryNames = [
        label if i % step == 0 else "" for i, label in enumerate(spec.labels)]
    plot.categoryAxis.labels.fontSize = 6
    plot.categoryAxis.labels.angle = 30 if len(spec.labels) > 6 else 0
    plot.categoryAxis.labels.boxAnchor = "ne" if len(spec.labels) > 6 else "n"
    plot.valueAxis.labels.fontSize = 6
    plot.valueAxis.valueMin = min(0.0, *(min(v) for v in plot.data))
    if spec.kind == "stacked-bar" and isinstance(plot, VerticalBarChart):
        plot.categoryAxis.style = "stacked"
    for i in range(len(plot.data)):
        if isinstance(plot, VerticalBarChart):
            plot.bars[i].fillColor = _PALETTE[i % len(_PALETTE)]
            plot.bars[i].strokeColor = None
        else:
            plot.lines[i].strokeColor = _PALETTE[i % len(_PALETTE)]
    drawing.add(plot)
    drawing.add(legend)
    return drawing


def reports_pdf(
    reports: Sequence[Report],
    *,
    title: str,
    filter_lines: Sequence[tuple[str, str]],
    generated_at: datetime,
) -> bytes:
    """One PDF: title, filters, then each report's title, description, table and notes."""
    wide = any(len(r.columns) > 6 for r in reports)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(letter) if wide else letter,
        title=title,
        author="carecollect",
        leftMargin=0.6 * inch,
        rightMargin=0.6 * inch,
        topMargin=0.6 * inch,
        bottomMargin=0.6 * inch,
    )
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    story: list[object] = [Paragraph(escape(title), styles["Title"])]
    for label, value in filter_lines:
        story.append(Paragraph(f"<b>{escape(label)}:</b> {escape(value)}", styles["BodyText"]))
    story.append(Paragraph(
        f"<b>Generated at:</b> {generated_at.strftime('%Y-%m-%d %H:%M UTC')}",
        styles["BodyText"]))
    for report in reports:
        story.append(Spacer(1, 0.25 * inch))
        story.append(Paragraph(escape(report.title), styles["Heading2"]))
        if report.description:
            story.append(Paragraph(escape(report.description), small))
        drawing = (chart_drawing(report.chart, width=document.width)
                   if report.chart is not None else None)
        if drawing is not None:
            story.append(drawing)
        story.append(Spacer(1, 0.08 * inch))
        header = [Paragraph(f"<b>{escape(column_label(c))}</b>", small) for c in report.columns]
        body = [
            [Paragraph(escape(format_cell(c, cell)), small)
             for c, cell in zip(report.columns, row, strict=False)]
            for row in report.rows
        ]
        if not body:
            story.append(Paragraph("No data for these filters.", small))
        else:
            table = Table([header, *body], repeatRows=1, hAlign="LEFT")
            table.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]))
            story.append(table)
        story.extend(Paragraph(escape(note), small) for note in report.notes)
    document.build(story)
    return buffer.getvalue()


def report_pdf(
    report: Report, *, filter_lines: Sequence[tuple[str, str]]
) -> bytes:
    return reports_pdf([report], title=report.title, filter_lines=filter_lines,
                       generated_at=report.generated_at)


def export_filename(key: str, filters: ReportFilters, export_format: ExportFormat) -> str:
    # Ids and dates only: the name lands in a Content-Disposition header and in downloads.
    return (f"{key}-{filters.period_start.isoformat()}-{filters.period_end.isoformat()}"
            f".{export_format}")


def render_export(
    session: Session, report: Report, *, filters: ReportFilters, export_format: ExportFormat
) -> ExportedFile:
    if export_format == "csv":
        content = report_csv(report)
    else:
        content = report_pdf(report, filter_lines=describe_filters(session, filters))
    return ExportedFile(
        filename=export_filename(report.key, filters, export_format),
        media_type=MEDIA_TYPES[export_format],
        content=content,
        rows=len(report.rows),
    )


def record_export(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    key: str,
    filters: ReportFilters,
    export_format: ExportFormat,
    rows: int,
) -> None:
    """The audit event of an export: report key, format, row count and filter ids."""
    record(
        session,
        actor=actor,
        action="insight.export",
        subject=Subject("insight_report", None, organization_id=organization_id),
        details={
            "report": key,
            "format": export_format,
            "rows": rows,
            "period_start": filters.period_start.isoformat(),
            "period_end": filters.period_end.isoformat(),
            "location_id": str(filters.location_id) if filters.location_id else None,
            "campaign_id": str(filters.campaign_id) if filters.campaign_id else None,
        },
    )
