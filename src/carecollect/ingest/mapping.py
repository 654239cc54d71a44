"""CSV mapping files (TOML): which column holds which field, formats and value maps.

The format is documented in docs/INGEST.md; the package ships examples in
`carecollect/ingest/mappings/` that `--mapping NAME` finds by name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from carecollect.ingest.errors import IngestError
from carecollect.ledger.models import ENTRY_KINDS

_SECTIONS = {"source", "guarantor", "patient", "account", "ledger", "values"}
_GUARANTOR = {"id", "first_name", "last_name", "date_of_birth", "state", "language",
              "address_line1", "address_line2", "city", "zip", "phones", "emails"}
_PATIENT = {"id", "first_name", "last_name", "date_of_birth", "sex", "relationship",
            "same_as_guarantor"}
_ACCOUNT = {"id", "number", "opened", "debt_kind", "debt_kind_column"}
_LEDGER = {"id", "kind", "kind_column", "amount", "posted", "service_date",
           "procedure_codes", "description", "aging"}
_AGING = {"as_of", "as_of_column", "buckets"}
_VALUE_MAPS = {"phone_type", "kind", "sex", "relationship", "language", "debt_kind"}


@dataclass(frozen=True)
class PhoneColumn:
    number: str
    type: str | None = None  # a fixed line type for this column
    type_column: str | None = None  # or a column holding the type code


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file."""

    system: str
    delimiter: str = ","
    encoding: str = "utf-8"
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    money: str = "decimal"  # decimal | cents
    guarantor: dict[str, str] = field(default_factory=dict)
    phones: tuple[PhoneColumn, ...] = ()
    emails: tuple[str, ...] = ()
    patient: dict[str, Any] = field(default_factory=dict)
    account: dict[str, str] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    aging: dict[str, Any] | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def columns(self) -> set[str]:
        """Every column the mapping reads (the file's header must have them all)."""
        used = set(self.guarantor.values())
        used |= {p.number for p in self.phones} | {p.type_column for p in self.phones
                                                  if p.type_column}
        used |= set(self.emails)
        used |= {v for k, v in self.patient.items() if isinstance(v, str)}
        used |= {v for k, v in self.account.items() if k != "debt_kind"}
        used |= {v for k, v in self.ledger.items()
                 if k not in ("kind", "aging") and isinstance(v, str)}
        if self.aging:
            used |= set(self.aging["buckets"])
            if self.aging.get("as_of_column"):
                used.add(self.aging["as_of_column"])
        return {c for c in used if c}


def _fail(path_name: str, message: str) -> IngestError:
    return IngestError(f"mapping {path_name}: {message}")


def _table(data: dict[str, Any], key: str, allowed: set[str], name: str) -> dict[str, Any]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise _fail(name, f"[{key}] must be a table")
    unknown = set(section) - allowed
    if unknown:
        raise _fail(name, f"[{key}] has unknown keys {', '.join(sorted(unknown))}")
    return section


def builtin_mappings() -> list[str]:
    """Names of the example mappings shipped in the package."""
    folder = resources.files("carecollect.ingest") / "mappings"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def load_mapping(spec: str | Path) -> Mapping:
    """Load a mapping from a file path, or a shipped example by name."""
    path = Path(spec)
    if path.is_file():
        name, raw = path.name, path.read_bytes()
    else:
        shipped = resources.files("carecollect.ingest") / "mappings" / f"{spec}.toml"
        if not shipped.is_file():
            raise IngestError(
                f"mapping {spec!s} is neither a file nor a shipped mapping "
                f"({', '.join(builtin_mappings())})"
            )
        name, raw = f"{spec}.toml", shipped.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(name, f"not valid TOML ({type(exc).__name__})") from None
    return parse_mapping(data, name)


def parse_mapping(data: dict[str, Any], name: str = "mapping") -> Mapping:
    unknown = set(data) - _SECTIONS
    if unknown:
        raise _fail(name, f"unknown sections {', '.join(sorted(unknown))}")
    source = _table(data, "source", {"system", "delimiter", "encoding", "date_format",
                                     "money"}, name)
    system = source.get("system")
    if not isinstance(system, str) or not system.strip() or "/" in system:
        raise _fail(name, "[source] system must name the exporting system (no '/')")
    delimiter = source.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise _fail(name, "[source] delimiter must be one character")
    formats = source.get("date_format", "%Y-%m-%d")
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    money = source.get("money", "decimal")
    if money not in ("decimal", "cents"):
        raise _fail(name, "[source] money must be 'decimal' or 'cents'")
    encoding = source.get("encoding", "utf-8")
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        raise _fail(name, "[source] encoding is not a known text encoding") from None

    guarantor = _table(data, "guarantor", _GUARANTOR, name)
    for required in ("id", "first_name", "last_name"):
        if not isinstance(guarantor.get(required), str):
            raise _fail(name, f"[guarantor] needs the column of {required}")
    phones = []
    for item in guarantor.get("phones", []):
        if isinstance(item, str):
            phones.append(PhoneColumn(item))
        elif isinstance(item, dict) and isinstance(item.get("number"), str):
            phones.append(PhoneColumn(item["number"], item.get("type"), item.get("type_column")))
        else:
            raise _fail(name, "[guarantor] phones must be column names or {number, type}")
    emails = guarantor.get("emails", [])
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise _fail(name, "[guarantor] emails must be a list of column names")
    patient = _table(data, "patient", _PATIENT, name)
    if patient and not patient.get("same_as_guarantor"):
        for required in ("id", "first_name", "last_name"):
            if not isinstance(patient.get(required), str):
                raise _fail(name, f"[patient] needs the column of {required}")
    account = _table(data, "account", _ACCOUNT, name)
    ledger = _table(data, "ledger", _LEDGER, name)
    if ledger and not account.get("id"):
        raise _fail(name, "[ledger] needs an [account] with an id column")
    if account and not (account.get("id") and account.get("number")):
        raise _fail(name, "[account] needs id and number columns")
    aging = None
    if "aging" in ledger:
        aging = _table(ledger, "aging", _AGING, name)
        buckets = aging.get("buckets")
        if not isinstance(buckets, dict) or not buckets or not all(
            isinstance(v, int) and v >= 0 for v in buckets.values()
        ):
            raise _fail(name, "[ledger.aging] buckets must map columns to days past due")
        if not (aging.get("as_of") or aging.get("as_of_column")):
            raise _fail(name, "[ledger.aging] needs as_of (a date) or as_of_column")
    elif ledger:
        if not ledger.get("amount") or not ledger.get("posted"):
            raise _fail(name, "[ledger] needs amount and posted columns (or an aging table)")
        if not (ledger.get("kind") or ledger.get("kind_column")):
            raise _fail(name, "[ledger] needs kind (fixed) or kind_column")
    values = _table(data, "values", _VALUE_MAPS, name)
    for key, table in values.items():
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise _fail(name, f"[values.{key}] must map codes to text")
    for target in [*values.get("kind", {}).values(), ledger.get("kind")]:
        if target is not None and target not in ENTRY_KINDS:
            raise _fail(name, "a ledger kind is not one of " + ", ".join(sorted(ENTRY_KINDS)))
    return Mapping(
        system=system.strip(),
        delimiter=delimiter,
        encoding=encoding,
        date_formats=formats,
        money=money,
        guarantor={k: v for k, v in guarantor.items() if isinstance(v, str)},
        phones=tuple(phones),
        emails=tuple(emails),
        patient=patient,
        account=account,
        ledger={k: v for k, v in ledger.items() if k != "aging"},
        aging=aging,
        values={k: {str(code).strip().upper(): v for code, v in t.items()}
                for k, t in values.items()},
    )
