"""CSV and PDF rendering of insights reports: exact cells, formula defusing, PDF text."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader

from carecollect.errors import BadInput
from carecollect.insight.export import (
    chart_drawing,
    column_label,
    csv_safe,
    export_filename,
    format_cell,
    report_csv,
    reports_pdf,
)
from carecollect.insight.schemas import ChartDataset, ChartSpec, Report, ReportFilters

GENERATED = datetime(2026, 11, 2, 7, 5, tzinfo=UTC)


def _report(rows: list[list[object]] | None = None) -> Report:
    return Report(
        key="collections_by_channel",
        title="Collected by channel",
        description="Patient payments by the channel of the last touch.",
        columns=["channel", "payments", "collected_cents", "share"],
        rows=rows if rows is not None else [  # type: ignore[arg-type]
            ["sms", 3, 123_456, 0.625],
            ["email", 1, 74_044, 0.375],
            ["=HYPERLINK(\"http://x\")", 0, -1_050, 0.0],
        ],
        chart=ChartSpec(kind="bar", labels=["sms", "email"],
                        datasets=[ChartDataset(label="Collected ($)", values=[1234.56, 740.44])]),
        notes=["Attribution: last touch within 7 days before the payment."],
        generated_at=GENERATED,
    )


def test_csv_has_exact_cells_and_defuses_formulas() -> None:
    rows = list(csv.reader(io.StringIO(report_csv(_report()).decode("utf-8"))))
    assert rows == [
        ["channel", "payments", "collected_cents", "share"],
        ["sms", "3", "123456", "0.625"],
        ["email", "1", "74044", "0.375"],
        # A text cell that a spreadsheet would evaluate gets a leading quote; a negative
        # number stays a number.
        ["'=HYPERLINK(\"http://x\")", "0", "-1050", "0.0"],
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (None, ""),
        (-5, -5),
        (2.5, 2.5),
    ],
)
def test_csv_safe(value: object, expected: object) -> None:
    assert csv_safe(value) == expected  # type: ignore[arg-type]


def test_formatting_of_money_rates_and_labels() -> None:
    assert format_cell("collected_cents", 123_456) == "$1,234.56"
    assert format_cell("collected_cents", -1_050) == "-$10.50"
    assert format_cell("share", 0.625) == "0.625"
    assert format_cell("share", 2.0) == "2"
    assert format_cell("payments", 12_345) == "12,345"
    assert format_cell("channel", None) == ""
    assert column_label("collected_cents") == "Collected ($)"
    assert column_label("on_time_rate") == "On time rate"


def test_pdf_holds_title_filters_table_notes_and_generation_time() -> None:
    content = reports_pdf(
        [_report()],
        title="Collected by channel",
        filter_lines=[("Period", "2026-10-01 to 2026-11-01 (end exclusive)"),
                      ("Location", "All locations"), ("Campaign", "Spring reminders")],
        generated_at=GENERATED,
    )
    assert content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(p.extract_text() for p in reader.pages)
    for expected in ("Collected by channel", "Period: 2026-10-01 to 2026-11-01",
                     "Location: All locations", "Campaign: Spring reminders",
                     "Generated at: 2026-11-02 07:05 UTC", "$1,234.56", "$740.44",
                     "-$10.50", "Collected ($)", "Attribution: last touch within 7 days"):
        assert expected in text, expected
    assert reader.metadata is not None
    assert reader.metadata.title == "Collected by channel"


def test_pdf_of_an_empty_report_says_so() -> None:
    content = reports_pdf([_report(rows=[])], title="Empty", filter_lines=[],
                          generated_at=GENERATED)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    assert "No data for these filters." in text


def test_filename_has_key_and_dates_only() -> None:
    filters = ReportFilters(period_start=date(2026, 10, 1), period_end=date(2026, 11, 1))
    assert export_filename("aging", filters, "pdf") == "aging-2026-10-01-2026-11-01.pdf"


def test_filters_reject_an_inverted_period() -> None:
    with pytest.raises(BadInput, match="period_end must be after period_start"):
        ReportFilters(period_start=date(2026, 10, 2), period_end=date(2026, 10, 1))


def test_pdf_charts_are_drawn_from_the_chart_spec() -> None:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.charts.piecharts import Pie

    labels = [f"2026-10-{d:02d}" for d in range(1, 31)]
    stacked = ChartSpec(kind="stacked-bar", labels=labels, datasets=[
        ChartDataset("0-30 days ($)", [1.0] * 30), ChartDataset("31-60 days ($)", [2.5] * 30)])
    drawing = chart_drawing(stacked, width=400)
    assert drawing is not None
    [plot] = [c for c in drawing.contents if isinstance(c, VerticalBarChart)]
    assert plot.data == [[1.0] * 30, [2.5] * 30]
    assert plot.categoryAxis.style == "stacked"
    # At most about a dozen axis labels: every other day is left blank here.
    shown = [n for n in plot.categoryAxis.categoryNames if n]
    assert shown == labels[::2]

    line = chart_drawing(ChartSpec(kind="line", labels=["2026-09", "2026-10"],
                                   datasets=[ChartDataset("DSO", [41.5, -3.0])]), width=400)
    assert line is not None
    [plot_line] = [c for c in line.contents if isinstance(c, HorizontalLineChart)]
    assert plot_line.data == [[41.5, -3.0]]
    assert plot_line.valueAxis.valueMin == -3.0

    pie = chart_drawing(ChartSpec(kind="doughnut", labels=["sms", "email"],
                                  datasets=[ChartDataset("Payments", [3.0, 1.0])]), width=400)
    assert pie is not None
    assert [c.data for c in pie.contents if isinstance(c, Pie)] == [[3.0, 1.0]]

    for empty in (ChartSpec(kind="bar", labels=[], datasets=[]),
                  ChartSpec(kind="doughnut", labels=["sms"],
                            datasets=[ChartDataset("Payments", [0.0])])):
        assert chart_drawing(empty, width=400) is None


def test_pdf_with_a_chart_is_still_readable() -> None:
    with_chart = reports_pdf([_report()], title="t", filter_lines=[], generated_at=GENERATED)
    plain = reports_pdf([replace(_report(), chart=None)], title="t", filter_lines=[],
                        generated_at=GENERATED)
    assert len(with_chart) > len(plain)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(with_chart)).pages)
    assert "$1,234.56" in text
