"""Minimal text extraction for ReportLab PDFs (no pdftotext/pypdf in the environment):
inflate every content stream and join the string operands of the text operators."""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)
_STRING = re.compile(rb"\((.*?)(?<!\\)\)\s*Tj")


def pdf_text(data: bytes) -> str:
    out: list[str] = []
    for raw in _STREAM.findall(data):
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            try:
                import base64

                content = zlib.decompress(base64.a85decode(raw.strip().removesuffix(b"~>")))
            except Exception:  # noqa: S112 - images and fonts are not text
                continue
        out.extend(m.replace(rb"\(", b"(").replace(rb"\)", b")").decode("latin-1")
                   for m in _STRING.findall(content))
    return " ".join(out)


def page_count(data: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b", data))
