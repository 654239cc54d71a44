"""CSV and PDF rendering of insights reports: exact cells, formula defusing, PDF text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader

from carecollect.errors import BadInput
from carecollect.insight.export import (
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
