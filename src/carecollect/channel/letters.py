"""Letters: PDF statements and notices (ReportLab) and the mail-house batch export.

`LetterSpool.send` renders one letter to a PDF in the spool's `pending/` directory (the
dispatcher's "provider call"); `export_batch` moves every pending PDF into a new batch
directory with a manifest (CSV and JSON: attempt id, file, pages, SHA-256, ZIP for presort)
for the mail house, itself a business associate (HIPAA-BAA). The envelope window shows only
the neutral billing name, return address and the recipient's name and address
(RULES.md §8 "Envelope exterior"); the statement detail is inside.

PDFs are written uncompressed and with ReportLab's invariant mode, so a file is
reproducible byte for byte and its text is checkable without a PDF library.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas

from carecollect.channel.base import NotSent, OutboundMessage, SendResult, SentRecord

_PAGE_RE = re.compile(rb"/Type\s*/Page(?!s)")


def page_count(pdf: bytes) -> int:
    return len(_PAGE_RE.findall(pdf))


def _wrap(text: str, width: int = 90) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.split()
        if not words:
            lines.append("")
            continue
        line = ""
        for word in words:
            if len(line) + len(word) + 1 > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
    return lines


def render_letter_pdf(*, return_name: str, return_address: list[str], recipient_name: str,
                      recipient_address: list[str], body: str, reference: str) -> bytes:
    """One letter: window-envelope address block on page 1, then the body, paginated."""
    import io

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, invariant=1, pageCompression=0)
    canvas.setTitle(return_name)
    width, height = LETTER
    # Return address (upper left) and recipient (window position of a #10 envelope).
    y = height - 0.6 * inch
    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(0.75 * inch, y, return_name)
    canvas.setFont("Helvetica", 9)
    for line in return_address:
        y -= 12
        canvas.drawString(0.75 * inch, y, line)
    y = height - 2.0 * inch
    canvas.setFont("Helvetica", 10)
    for line in [recipient_name, *recipient_address]:
        canvas.drawString(1.0 * inch, y, line)
        y -= 13
    canvas.setFont("Helvetica", 7)
    canvas.drawString(width - 2.6 * inch, height - 0.6 * inch, f"Ref {reference}")
    y = height - 3.3 * inch
    canvas.setFont("Helvetica", 10)
    for line in _wrap(body):
        if y < 0.9 * inch:
            canvas.showPage()
            canvas.setFont("Helvetica", 10)
            y = height - 0.9 * inch
        canvas.drawString(0.75 * inch, y, line)
        y -= 14
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


@dataclass
class LetterSpool:
    directory: Path
    return_address: tuple[str, ...] = ()
    name: str = "mail_house"
    service: str | None = "mail_house"
    honours_idempotency: bool = True  # a letter is a file named by its attempt id

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        (self.directory / "pending").mkdir(parents=True, exist_ok=True)

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.letter_body:
            raise NotSent("letter_body_missing", retryable=False)
        try:
            address = json.loads(message.to)
        except ValueError:
            raise NotSent("letter_address_invalid", retryable=False) from None
        lines = [address.get("line1", ""), *([address["line2"]] if address.get("line2") else []),
                 f"{address.get('city', '')}, {address.get('state', '')} {address.get('zip', '')}"]
        pdf = render_letter_pdf(
            return_name=message.from_name, return_address=list(self.return_address),
            recipient_name=message.recipient_name or "", recipient_address=lines,
            body=message.letter_body, reference=message.attempt_id.hex[:12])
        pending = self.directory / "pending"
        target = pending / f"{message.attempt_id}.pdf"
        meta = {"attempt_id": str(message.attempt_id), "zip5": str(address.get("zip", ""))[:5],
                "pages": page_count(pdf), "sha256": hashlib.sha256(pdf).hexdigest()}
        # Write-then-rename: a crash never leaves a half letter for the mail house.
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(pdf)
        os.replace(tmp, target)
        (pending / f"{message.attempt_id}.json").write_text(json.dumps(meta))
        return SendResult(self.name, f"letter:{message.attempt_id}", "spooled")

    def lookup(self, record: SentRecord) -> SendResult | bool | None:
        pending = self.directory / "pending" / f"{record.attempt_id}.pdf"
        if pending.exists() or any(self.directory.glob(f"batch-*/{record.attempt_id}.pdf")):
            return SendResult(self.name, f"letter:{record.attempt_id}", "spooled")
        return False

    def export_batch(self, *, now: datetime | None = None) -> Path | None:
        """Move pending letters into `batch-<time>-<id>/` with manifest.csv and
        manifest.json; returns the batch directory (None when nothing is pending)."""
        pending = self.directory / "pending"
        metas = sorted(pending.glob("*.json"))
        if not metas:
            return None
        when = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        batch = self.directory / f"batch-{when}-{uuid.uuid4().hex[:8]}"
        batch.mkdir()
        rows: list[dict[str, Any]] = []
        for meta_path in metas:
            meta = json.loads(meta_path.read_text())
            pdf = pending / f"{meta['attempt_id']}.pdf"
            os.replace(pdf, batch / pdf.name)
            meta_path.unlink()
            rows.append({"attempt_id": meta["attempt_id"], "file": pdf.name,
                         "pages": meta["pages"], "sha256": meta["sha256"],
                         "zip5": meta["zip5"]})
        rows.sort(key=lambda r: (r["zip5"], r["attempt_id"]))  # presort by ZIP
        with (batch / "manifest.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["attempt_id", "file", "pages", "sha256",
                                                    "zip5"])
            writer.writeheader()
            writer.writerows(rows)
        (batch / "manifest.json").write_text(json.dumps(
            {"batch": batch.name, "created_at": when, "count": len(rows),
             "total_pages": sum(r["pages"] for r in rows), "letters": rows}, indent=2))
        return batch
