"""X12 835 (005010X221A1) health care claim payment/advice: parse, check, post.

The envelope is checked before anything is posted: ISA is exactly 106 characters and
gives the delimiters; IEA/GE/SE counts and control numbers must agree with what they
close (SE01 counts the segments from ST to SE inclusive). A file that fails is not an 835
this importer can trust and stops with one line.

Each claim (CLP loop) is posted to the account whose number equals the patient control
number CLP01 (or, with `match = "source_id"`, the account whose source id in a given
system is CLP01): the payer's payment (CLP04) as an `insurance_payment`, the claim and
service adjustments (CAS) of groups CO, OA, PI and CR as `insurance_adjustment`s, so what
remains on the account is the patient responsibility: CLP05, which must equal the sum of
the PR (patient responsibility) adjustments. With `charges = "post"` the billed amount
(CLP03) is posted as a charge too, for accounts whose charges were never imported. Claims
without a matching account are reported (row error "claim.patient_control_number"), never
dropped silently.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from carecollect.db import Database
from carecollect.errors import BadInput
from carecollect.ingest import normalize as n
from carecollect.ingest.errors import FieldError, IngestError, RowError
from carecollect.ingest.records import EntryIn, Unit
from carecollect.ingest.sourcekey import SourceKeys
from carecollect.kit.crypto.blind import normalize_account_number
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.ledger.models import Account

SYSTEM = "x12-835"
MAX_BYTES = 64 * 1024 * 1024
GROUPS = ("CO", "OA", "PI", "PR", "CR")


@dataclass
class Segment:
    tag: str
    elements: list[str]
    number: int  # 1-based position in the file

    def get(self, index: int) -> str:
        return self.elements[index] if index < len(self.elements) else ""


@dataclass
class Claim:
    """One CLP loop with its adjustments summed by group code."""

    number: int  # CLP ordinal in the file, the row number of error reports
    patient_control_number: str
    status: str
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    payer_claim_number: str
    adjustments: dict[str, int] = field(default_factory=dict)  # group -> cents
    service_date: date | None = None


@dataclass
class Remittance:
    """One transaction set (ST..SE)."""

    trace_number: str
    paid_on: date | None
    claims: list[Claim]


@dataclass
class X12Options:
    match: str = "account_number"  # account_number | source_id
    match_system: str | None = None  # the source system of source ids
    charges: str = "existing"  # existing | post

    @classmethod
    def from_file(cls, path: Path | None) -> X12Options:
        if path is None:
            return cls()
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise IngestError(f"mapping {path.name} is not a readable TOML file") from None
        section = data.get("x12", {})
        if not isinstance(section, dict) or set(section) - {"match", "source_system", "charges"}:
            raise IngestError(f"mapping {path.name}: [x12] takes match, source_system, charges")
        options = cls(
            match=section.get("match", "account_number"),
            match_system=section.get("source_system"),
            charges=section.get("charges", "existing"),
        )
        if options.match not in ("account_number", "source_id"):
            raise IngestError("[x12] match must be account_number or source_id")
        if options.match == "source_id" and not options.match_system:
            raise IngestError("[x12] match = source_id needs source_system")
        if options.charges not in ("existing", "post"):
            raise IngestError("[x12] charges must be existing or post")
        return options


# Parsing ---------------------------------------------------------------------------------


def _fail(message: str) -> IngestError:
    return IngestError(f"not a valid X12 835: {message}")


def tokenize(text: str) -> tuple[list[Segment], str]:
    """Split the interchange into segments using the delimiters ISA declares."""
    text = text.lstrip("\ufeff \r\n\t")
    if not text.startswith("ISA") or len(text) < 106:
        raise _fail("it does not start with an ISA segment")
    element, component, terminator = text[3], text[104], text[105]
    if len({element, component, terminator}) < 3 or element.isalnum() or terminator.isalnum():
        raise _fail("the ISA segment's delimiters are not valid")
    segments: list[Segment] = []
    for raw in text.split(terminator):
        raw = raw.strip("\r\n")
        if not raw.strip():
            continue
        parts = raw.split(element)
        tag = parts[0].strip()
        if not (2 <= len(tag) <= 3 and tag.isalnum()):
            raise _fail(f"segment {len(segments) + 1} has no valid segment id")
        segments.append(Segment(tag, parts, len(segments) + 1))
    return segments, component


def _money(raw: str, where: str, *, required: bool = True) -> int:
    if not raw.strip():
        if required:
            raise _fail(f"{where} has no amount")
        return 0
    try:
        return n.money_cents(raw, where, allow_negative=True)
    except FieldError:
        raise _fail(f"{where} is not an amount") from None


def _date8(raw: str) -> date | None:
    try:
        return datetime.strptime(raw, "%Y%m%d").date()  # noqa: DTZ007 - calendar date
    except ValueError:
        return None


def parse_835(text: str) -> list[Remittance]:
    """Parse and check a whole interchange; IngestError when it is not a valid 835."""
    segments, _component = tokenize(text)
    isa = segments[0]
    if isa.tag != "ISA" or len(isa.elements) != 17:
        raise _fail("the ISA segment must have 16 elements")
    if segments[-1].tag != "IEA":
        raise _fail("the interchange is not closed by IEA (truncated file?)")
    remittances: list[Remittance] = []
    groups = 0
    index = 1
    while index < len(segments) - 1:
        gs = segments[index]
        if gs.tag != "GS":
            raise _fail(f"segment {gs.number} should open a functional group (GS)")
        groups += 1
        sets = 0
        index += 1
        while index < len(segments) and segments[index].tag == "ST":
            start = index
            st = segments[index]
            if st.get(1) != "835":
                raise _fail(f"transaction set {st.get(2) or '?'} is a {st.get(1)}, not an 835")
            while index < len(segments) and segments[index].tag != "SE":
                index += 1
            if index >= len(segments):
                raise _fail("a transaction set is not closed by SE (truncated file?)")
            se = segments[index]
            count = index - start + 1
            if se.get(1) != str(count):
                raise _fail(f"SE says {se.get(1) or '?'} segments, the transaction set has {count}")
            if se.get(2) != st.get(2):
                raise _fail("SE control number differs from ST's")
            remittances.append(_transaction(segments[start + 1 : index]))
            sets += 1
            index += 1
        if index >= len(segments) or segments[index].tag != "GE":
            raise _fail("a functional group is not closed by GE")
        ge = segments[index]
        if ge.get(1) != str(sets):
            raise _fail(f"GE says {ge.get(1) or '?'} transaction sets, the group has {sets}")
        if ge.get(2) != gs.get(6):
            raise _fail("GE control number differs from GS's")
        index += 1
    iea = segments[-1]
    if iea.get(1) != str(groups):
        raise _fail(f"IEA says {iea.get(1) or '?'} functional groups, the interchange has {groups}")
    if iea.get(2).strip() != isa.get(13).strip():
        raise _fail("IEA control number differs from ISA's")
    return remittances


def _transaction(body: list[Segment]) -> Remittance:
    trace, paid_on, production = "", None, None
    claims: list[Claim] = []
    current: Claim | None = None
    for seg in body:
        if seg.tag == "BPR":
            paid_on = _date8(seg.get(16))
        elif seg.tag == "TRN":
            trace = seg.get(2)
        elif seg.tag == "CLP":
            if not seg.get(1).strip():
                raise _fail(f"CLP segment {seg.number} has no patient control number")
            current = Claim(
                number=len(claims) + 1,
                patient_control_number=seg.get(1).strip(),
                status=seg.get(2),
                charge_cents=_money(seg.get(3), f"CLP03 of segment {seg.number}"),
                paid_cents=_money(seg.get(4), f"CLP04 of segment {seg.number}"),
                patient_responsibility_cents=_money(
                    seg.get(5), f"CLP05 of segment {seg.number}", required=False
                ),
                payer_claim_number=seg.get(7).strip(),
            )
            claims.append(current)
        elif seg.tag == "CAS":
            if current is None:
                raise _fail(f"CAS segment {seg.number} is outside a claim")
            group = seg.get(1)
            if group not in GROUPS:
                raise _fail(f"CAS segment {seg.number} has unknown group code")
            # Up to six (reason, amount, quantity) triplets per CAS segment.
            for position in range(2, 20, 3):
                reason, amount = seg.get(position), seg.get(position + 1)
                if not reason and not amount:
                    continue
                cents = _money(amount, f"CAS segment {seg.number}")
                current.adjustments[group] = current.adjustments.get(group, 0) + cents
        elif seg.tag == "DTM" and current is None and seg.get(1) == "405":
            production = _date8(seg.get(2))  # the remittance's production date
        elif seg.tag == "DTM" and current is not None and seg.get(1) in ("232", "472", "150"):
            current.service_date = current.service_date or _date8(seg.get(2))
    return Remittance(trace, paid_on or production, claims)


# Posting --------------------------------------------------------------------------------


def _check_claim(claim: Claim) -> None:
    """The 835 balancing rules a claim must satisfy before its money is posted."""
    total_adjusted = sum(claim.adjustments.values())
    if claim.charge_cents - claim.paid_cents != total_adjusted:
        raise FieldError("claim", "billed minus paid does not equal the adjustments (CAS)")
    if claim.adjustments.get("PR", 0) != claim.patient_responsibility_cents:
        raise FieldError("claim.patient_responsibility",
                         "CLP05 does not equal the PR adjustments")


class X12Source:
    """Claims of one 835 file as units, matched to the organization's accounts."""

    def __init__(self, path: Path, options: X12Options, *, practice_zone: str = "UTC") -> None:
        self.path = path
        self.options = options
        self.zone = practice_zone
        self.remittances: list[Remittance] = []
        self.total_rows = 0
        self.unmatched = 0

    def prescan(self) -> None:
        if not self.path.is_file():
            raise IngestError(f"{self.path.name} is not a readable file")
        if self.path.stat().st_size > MAX_BYTES:
            raise IngestError(f"{self.path.name} is larger than an 835 this importer reads")
        try:
            text = self.path.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise _fail("it contains bytes outside the X12 basic character set") from None
        self.remittances = parse_835(text)
        self.total_rows = sum(len(r.claims) for r in self.remittances)

    def units(self, db: Database, keys: OrganizationKeys) -> Iterator[Unit | RowError]:
        matches = self._match(db, keys)
        for remittance in self.remittances:
            posted = n.at_noon(remittance.paid_on, self.zone) if remittance.paid_on else \
                n.at_noon(date.today(), self.zone)  # noqa: DTZ011 - a calendar date
            for claim in remittance.claims:
                try:
                    _check_claim(claim)
                except FieldError as exc:
                    yield RowError(claim.number, exc.field, exc.reason)
                    continue
                account_id = matches.get(claim.patient_control_number)
                if account_id is None:
                    self.unmatched += 1
                    yield RowError(claim.number, "claim.patient_control_number",
                                   "no account matches this claim (unmatched claim)")
                    continue
                yield self._unit(claim, remittance, account_id, posted)

    def _unit(
        self, claim: Claim, remittance: Remittance, account: uuid.UUID, posted: datetime
    ) -> Unit:
        base = f"{remittance.trace_number}|{claim.patient_control_number}|" \
               f"{claim.payer_claim_number}|{claim.status}"
        unit = Unit(claim.number)
        service = claim.service_date.isoformat() if claim.service_date else None

        def entry(suffix: str, kind: str, cents: int, text: str) -> None:
            if cents:
                unit.entries.append(EntryIn(f"{base}|{suffix}", f"account:{account}", kind, cents,
                                            posted, service_date=service, description=text,
                                            account_id=account))

        if self.options.charges == "post":
            entry("charge", "charge", claim.charge_cents, "billed (835 CLP03)")
        # A reversal (CLP02 = 22) carries negative amounts: it raises the balance again.
        if claim.paid_cents > 0:
            entry("paid", "insurance_payment", -claim.paid_cents, "payer payment (835 CLP04)")
        elif claim.paid_cents < 0:
            entry("paid", "adjustment", -claim.paid_cents, "payer payment reversal (835)")
        for group in ("CO", "OA", "PI", "CR"):
            cents = claim.adjustments.get(group, 0)
            if cents > 0:
                entry(f"cas|{group}", "insurance_adjustment", -cents, f"{group} adjustment (835)")
            elif cents < 0:
                entry(f"cas|{group}", "adjustment", -cents, f"{group} adjustment (835)")
        unit.noted["claims_matched"] = 1
        unit.noted["patient_responsibility_cents"] = claim.patient_responsibility_cents
        return unit

    def _match(self, db: Database, keys: OrganizationKeys) -> dict[str, uuid.UUID]:
        """Patient control number -> id of the one matching account (ambiguous: none)."""
        numbers = {c.patient_control_number for r in self.remittances for c in r.claims}
        found: dict[str, uuid.UUID] = {}
        if not numbers:
            return found
        cipher, blind = keys.cipher(), keys.blind()
        by_system = SourceKeys(keys, self.options.match_system or "")
        with db.tenant_session(keys.organization_id) as session:
            for number in sorted(numbers):
                if self.options.match == "source_id":
                    key = by_system("account", number)
                    account = session.scalar(select(Account).where(Account.source_key == key))
                    candidates = [account] if account is not None else []
                else:
                    try:
                        wanted = normalize_account_number(number)
                    except BadInput:  # a PCN that cannot be an account number
                        continue
                    candidates = [
                        a for a in session.scalars(
                            select(Account).where(
                                Account.account_number_bidx == blind.account_number(number)
                            )
                        )
                        if normalize_account_number(cipher.open_row(a, "account_number") or "")
                        == wanted
                    ]
                if len(candidates) == 1:
                    found[number] = candidates[0].id
        return found


