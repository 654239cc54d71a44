"""Property tests: no parser crashes on any input with anything but its documented error
type (`IngestError` for the file, `RowError`s for rows, `FieldError` for one field).

Inputs are random bytes and random mutations (cuts, insertions, replaced bytes) of valid
files, which reach much deeper into each parser than random bytes alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.ingest.csv_import import CsvSource
from carecollect.ingest.errors import FieldError, IngestError, RowError
from carecollect.ingest.fhir import FhirSource
from carecollect.ingest.mapping import load_mapping
from carecollect.ingest.normalize import money_cents
from carecollect.ingest.records import Unit
from carecollect.ingest.synthea import SyntheaSource
from carecollect.ingest.x12 import parse_835
from tests.ingest.conftest import aged_row, write_csv

HERE = Path(__file__).parent
X12_FILE = HERE.parents[2] / "shared" / "data" / "x12-835" / "managed-care.835"
SYNTHEA = HERE.parents[2] / "shared" / "data" / "synthea"
FUZZ = settings(max_examples=int(os.environ.get("CARECOLLECT_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 40)))
        action = draw(st.sampled_from(["cut", "insert", "replace", "truncate"]))
        noise = draw(st.binary(max_size=12))
        if action == "cut":
            del data[start:end]
        elif action == "insert":
            data[start:start] = noise
        elif action == "replace":
            data[start:end] = noise
        else:
            del data[start:]
    return bytes(data)


def _consume(items: object) -> None:
    for item in items:  # type: ignore[attr-defined]
        assert isinstance(item, Unit | RowError)


def _csv_seed() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(Path(folder) / "a.csv", [aged_row(), aged_row(**{
            "Account No": "A-2", "Patient ID": "P2", "Address 1": 'Apt "3", rear'})])
        return path.read_bytes()


CSV_SEED = _csv_seed()
MAPPING = load_mapping("generic-aged-receivables")


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(CSV_SEED)))
def test_csv_parser(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.csv"
        path.write_bytes(content)
        try:
            source = CsvSource(path, MAPPING)
            source.prescan()
            _consume(source.units())
        except IngestError:
            pass


@FUZZ
@given(st.one_of(st.text(max_size=400), mutated(X12_FILE.read_bytes()) if X12_FILE.exists()
                 else st.just(b"")))
def test_x12_parser(content: str | bytes) -> None:
    text = content.decode("latin-1") if isinstance(content, bytes) else content
    try:
        for remittance in parse_835(text):
            for claim in remittance.claims:
                assert isinstance(claim.charge_cents, int)
    except IngestError:
        pass


FHIR_SEED = (HERE / "data" / "fhir_bundle.json").read_bytes()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=10,
)


@st.composite
def fhir_documents(draw: st.DrawFn) -> bytes:
    bundle = json.loads(FHIR_SEED)
    entry = draw(st.sampled_from(bundle["entry"]))["resource"]
    key = draw(st.sampled_from(sorted(entry)))
    entry[key] = draw(JSON_VALUES)
    return json.dumps(bundle).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(FHIR_SEED), fhir_documents()))
def test_fhir_parser(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.json"
        path.write_bytes(content)
        try:
            source = FhirSource(path)
            source.prescan()
            _consume(source.units())
        except IngestError:
            pass


def _synthea_seed() -> bytes:
    if not SYNTHEA.is_dir():
        return b""
    return b"".join((SYNTHEA / "claims_transactions.csv").open("rb").readlines()[:30])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated(_synthea_seed()))
def test_synthea_parser(content: bytes) -> None:
    if not SYNTHEA.is_dir():
        return
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "s"
        target.mkdir()
        for name in ("patients.csv", "claims.csv", "payers.csv", "encounters.csv",
                     "organizations.csv", "providers.csv"):
            shutil.copyfile(SYNTHEA / name, target / name)
        (target / "claims_transactions.csv").write_bytes(content)
        try:
            source = SyntheaSource(target)
            source.prescan()
            _consume(source.units())
        except IngestError:
            pass


@given(st.text(max_size=20))
def test_money_parser_raises_only_field_errors(text: str) -> None:
    try:
        cents = money_cents(text, "amount", allow_negative=True)
    except FieldError:
        return
    assert isinstance(cents, int)


@given(st.integers(0, 10_000_000_000))
def test_money_round_trips_without_float(cents: int) -> None:
    whole, part = divmod(cents, 100)
    assert money_cents(f"{whole}.{part:02d}", "amount") == cents
    assert money_cents(f"${whole:,}.{part:02d}", "amount") == cents
    assert money_cents(f"({whole}.{part:02d})", "amount", allow_negative=True) == -cents
