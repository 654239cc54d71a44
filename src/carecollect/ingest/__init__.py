"""Ingest: getting a practice's receivables in (CSV with a mapping, Synthea CSV, FHIR R4,
X12 835), streaming, idempotent, with row-level error reports and a BAA gate.

Each format module turns its input into `records.Unit`s; `pipeline.run_import` writes them
in batches, one transaction each. docs/INGEST.md documents the formats.
"""
