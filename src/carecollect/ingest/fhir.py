"""FHIR R4 import: a Bundle (JSON) or NDJSON (one resource per line).

Resources are validated with `fhir.resources` (its R4B package, which reads R4 content of
these resources) and mapped as follows (docs/INGEST.md has the table):

* RelatedPerson -> guarantor (relationship from its code); Patient -> patient, and the
  guarantor too when no RelatedPerson pays for them (Account.guarantor or
  RelatedPerson.patient);
* Account -> account (number from its first identifier, else its id);
* ExplanationOfBenefit / ClaimResponse -> a `charge` of the patient-responsibility total
  (category `patientpay` or `memberliability`, else copay + deductible + coinsurance);
* Invoice -> a `charge` of totalNet (else totalGross), on Invoice.account or the patient's
  one account;
* Consent (active) -> consent granted (provision permit) or revoked (deny) for the kind
  coded under `CONSENT_SYSTEM` (tcpa_pec, tcpa_pewc, email_use, ...);
* Coverage -> the patient's insurance coverage (payer, member and group ids, period,
  order, subscriber relationship; identifiers and period sealed).

References are resolved across the whole file (relative `Type/id`, absolute URLs ending
in `Type/id`, and Bundle `fullUrl`s such as `urn:uuid:`); a resource whose reference
dangles is rejected and reported. NDJSON is streamed (one pass to index ids, then one
pass per resource group); a Bundle is one JSON document and is read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from carecollect.consent.models import CONSENT_KINDS
from carecollect.ingest import normalize as n
from carecollect.ingest.errors import FieldError, IngestError, RowError
from carecollect.ingest.normalize import Phone
from carecollect.ingest.records import (
    AccountIn,
    AddressIn,
    ConsentIn,
    CoverageIn,
    EntryIn,
    GuarantorIn,
    PatientIn,
    Unit,
)

SYSTEM = "fhir"
CONSENT_SYSTEM = "https://carecollect.org/fhir/CodeSystem/communication-consent"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
SUPPORTED = ("Patient", "RelatedPerson", "Account", "Coverage", "ExplanationOfBenefit",
             "ClaimResponse", "Invoice", "Consent")
# Dependency order: payers (RelatedPersons, self-paying Patients), then Patients paid for
# by someone else, then accounts, then money, then consent.
PASSES = (("RelatedPerson", "Patient"), ("Patient",), ("Account",),
          ("Coverage", "ExplanationOfBenefit", "ClaimResponse", "Invoice"), ("Consent",))
_RESPONSIBILITY = ("patientpay", "memberliability")
_PARTS = ("copay", "deductible", "coinsurance")
_RELATIONSHIP = {"MTH": "child", "FTH": "child", "PRN": "child", "GRPRN": "child",
                 "GUARD": "child", "SPS": "spouse", "HUSB": "spouse", "WIFE": "spouse",
                 "SELF": "self", "ONESELF": "self"}
_LINE_TYPE = {"mobile": "wireless"}


def _code_of(concepts: Any) -> list[tuple[str | None, str]]:
    """(system, code) of every coding of a CodeableConcept or a list of them."""
    if concepts is None:
        return []
    items = concepts if isinstance(concepts, list) else [concepts]
    return [(c.system, c.code) for item in items for c in (item.coding or []) if c.code]


def _iso_day(value: Any) -> str:
    """The calendar day of a FHIR date or dateTime, as ISO text."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise FieldError("period", "is not a date")


class FhirSource:
    """One FHIR file (Bundle or NDJSON) read as units in dependency order."""

    def __init__(self, path: Path, *, practice_zone: str = "UTC") -> None:
        self.path = path
        self.zone = practice_zone
        self.total_rows = 0
        self.size = 0
        self.ndjson = False
        self._keys: dict[str, str] = {}  # every way to refer to a resource -> its key
        self._guarantor_of: dict[str, str] = {}  # patient key -> guarantor key
        self._accounts_of: dict[str, list[str]] = {}  # patient key -> account keys
        self._organization_names: dict[str, str] = {}  # Organization key -> name

    # -- reading ------------------------------------------------------------------------

    def _raw(self) -> Iterator[tuple[int, dict[str, Any], str | None]]:
        """(ordinal, resource JSON, Bundle fullUrl) of every resource in the file."""
        if not self.path.is_file():
            raise IngestError(f"{self.path.name} is not a readable file")
        try:
            with self.path.open("rb") as handle:
                head = handle.read(4096).lstrip()
            first_line = head.split(b"\n", 1)[0]
            self.ndjson = not (b'"Bundle"' in first_line or not first_line.rstrip().endswith(b"}"))
            if self.ndjson:
                yield from self._ndjson()
            else:
                yield from self._bundle()
        except UnicodeDecodeError:
            raise IngestError(f"{self.path.name} is not UTF-8 JSON") from None

    def _ndjson(self) -> Iterator[tuple[int, dict[str, Any], str | None]]:
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except json.JSONDecodeError:
                    raise IngestError(
                        f"{self.path.name} is not NDJSON: line {number} is not JSON"
                    ) from None
                if not isinstance(resource, dict) or "resourceType" not in resource:
                    raise IngestError(f"{self.path.name}: line {number} is not a FHIR resource")
                yield number, resource, None

    def _bundle(self) -> Iterator[tuple[int, dict[str, Any], str | None]]:
        if self.path.stat().st_size > MAX_BUNDLE_BYTES:
            raise IngestError(f"{self.path.name} is too large for a Bundle: export NDJSON")
        try:
            bundle = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise IngestError(f"{self.path.name} is not JSON (truncated file?)") from None
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise IngestError(f"{self.path.name} is not a FHIR Bundle or NDJSON file")
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise IngestError(f"{self.path.name}: Bundle.entry is not a list")
        for number, entry in enumerate(entries, start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise IngestError(f"{self.path.name}: Bundle entry {number} has no resource")
            full_url = entry.get("fullUrl")
            yield number, resource, full_url if isinstance(full_url, str) else None

    @staticmethod
    def _key(resource: dict[str, Any], full_url: str | None) -> str | None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rid, str) and rid:
            return f"{rtype}/{rid}"
        return full_url

    def resolve(self, reference: Any, *types: str) -> str:
        """The key of the resource a Reference points to; FieldError when it dangles."""
        target = getattr(reference, "reference", None) if reference is not None else None
        if not target:
            raise FieldError("reference", f"a required reference to {'/'.join(types)} is missing")
        key = self._keys.get(target)
        if key is None and "/" in target:
            parts = target.rstrip("/").split("/")
            if len(parts) >= 2:
                key = self._keys.get(f"{parts[-2]}/{parts[-1]}")
            if key is None and len(parts) >= 4 and parts[-2] == "_history":
                key = self._keys.get(f"{parts[-4]}/{parts[-3]}")
        if key is None or (key.split("/")[0] not in types and not key.startswith("urn:")):
            raise FieldError("reference", f"refers to a {'/'.join(types)} not in the file")
        return key

    # -- prescan: index every resource and the relations the units need -----------------

    def prescan(self) -> None:
        types: dict[str, str] = {}
        count = 0
        for _number, resource, full_url in self._raw():
            key = self._key(resource, full_url)
            rtype = str(resource.get("resourceType"))
            count += 1
            if key is None:
                continue
            types[key] = rtype
            if rtype == "Organization" and isinstance(resource.get("name"), str):
                self._organization_names[key] = resource["name"]
            self._keys[key] = key
            if full_url:
                self._keys[full_url] = key
        self.total_rows = count
        self.size = self.path.stat().st_size
        self._types = types
        # Relations: who pays for each patient, and which accounts each patient has.
        for _number, resource, full_url in self._raw():
            kind = resource.get("resourceType")
            if kind not in ("Account", "RelatedPerson"):
                continue
            model = self._model(resource)
            if model is None:
                continue
            key = self._key(resource, full_url) or ""
            try:
                if kind == "Account" and model.subject:
                    patient = self.resolve(model.subject[0], "Patient")
                    self._accounts_of.setdefault(patient, []).append(key)
                    for guarantor in model.guarantor or []:
                        if guarantor.onHold:
                            continue
                        payer = self.resolve(guarantor.party, "Patient", "RelatedPerson")
                        self._guarantor_of.setdefault(patient, payer)
                        break
                elif kind == "RelatedPerson":
                    patient = self.resolve(model.patient, "Patient")
                    self._guarantor_of.setdefault(patient, key)
            except FieldError:
                continue  # reported when the resource itself is converted

    def _model(self, resource: dict[str, Any]) -> Any:
        rtype = resource.get("resourceType")
        if rtype not in SUPPORTED:
            return None
        try:
            return get_fhir_model_class(str(rtype)).model_validate(resource)
        except (ValidationError, ValueError, TypeError):
            return None

    # -- units --------------------------------------------------------------------------

    def units(self) -> Iterator[Unit | RowError]:
        for stage, group in enumerate(PASSES):
            for number, resource, full_url in self._raw():
                rtype = resource.get("resourceType")
                if rtype not in group:
                    if rtype not in SUPPORTED and stage == 0:
                        yield Unit(number, noted={"unsupported_resources": 1})
                    continue
                if rtype == "Patient" and stage < 2:
                    key = self._key(resource, full_url)
                    pays_self = key is None or self._guarantor_of.get(key, key) == key
                    if pays_self != (stage == 0):
                        continue
                model = self._model(resource)
                if model is None:
                    yield RowError(number, str(rtype), "is not a valid FHIR R4 resource")
                    continue
                key = self._key(resource, full_url)
                if key is None:
                    yield RowError(number, str(rtype), "has neither an id nor a fullUrl")
                    continue
                try:
                    yield getattr(self, f"_{str(rtype).lower()}")(number, key, model)
                except FieldError as exc:
                    yield RowError(number, f"{rtype}.{exc.field}", exc.reason)

    def _person(self, key: str, model: Any) -> GuarantorIn:
        name = next((nm for nm in model.name or [] if nm.use in (None, "official", "usual")),
                    (model.name or [None])[0])
        if name is None or not name.family or not name.given:
            raise FieldError("name", "needs a family and a given name")
        phones: list[Phone] = []
        emails: list[str] = []
        for telecom in model.telecom or []:
            if not telecom.value or (telecom.period and telecom.period.end):
                continue
            if telecom.system == "phone":
                phones.append(n.phone(telecom.value, "telecom", _LINE_TYPE.get(telecom.use or "")))
            elif telecom.system == "email":
                emails.append(n.email(telecom.value, "telecom"))
        address = None
        for item in model.address or []:
            if item.use == "old" or not item.line or not item.city:
                continue
            place = n.zip_place(item.postalCode, "address.postalCode") if item.postalCode \
                else None
            state = n.state_code(item.state, "address.state") if item.state else (
                place.state if place else None)
            if state is None:
                continue
            address = AddressIn(item.line[0], item.line[1] if len(item.line) > 1 else None,
                                item.city, state, place)
            break
        birth = model.birthDate.isoformat() if isinstance(model.birthDate, date) else None
        return GuarantorIn(key, name.given[0], name.family, birth,
                           address.state if address else None, phones=phones, emails=emails,
                           address=address)

    def _relatedperson(self, number: int, key: str, model: Any) -> Unit:
        self.resolve(model.patient, "Patient")
        unit = Unit(number)
        unit.guarantors.append(self._person(key, model))
        return unit

    def _patient(self, number: int, key: str, model: Any) -> Unit:
        unit = Unit(number)
        person = self._person(key, model)
        guarantor = self._guarantor_of.get(key, key)
        relationship = "self"
        if guarantor == key:
            unit.guarantors.append(person)
        elif self._types.get(guarantor) == "RelatedPerson":
            relationship = self._relationship_of.get(guarantor, "other")
        else:
            relationship = "other"  # another patient pays (a parent who is a patient too)
        birth = model.birthDate if isinstance(model.birthDate, date) else None
        today = datetime.now(UTC).date()
        minor = birth is not None and (
            today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        ) < 18
        unit.patients.append(PatientIn(key, guarantor, person.first_name, person.last_name,
                                       person.date_of_birth, relationship,
                                       model.gender if model.gender else None, minor))
        return unit

    @property
    def _relationship_of(self) -> dict[str, str]:
        if not hasattr(self, "_relationships"):
            self._relationships: dict[str, str] = {}
            for _number, resource, full_url in self._raw():
                if resource.get("resourceType") != "RelatedPerson":
                    continue
                model = self._model(resource)
                key = self._key(resource, full_url)
                if model is None or key is None:
                    continue
                codes = [code.upper() for _system, code in _code_of(model.relationship)]
                self._relationships[key] = next(
                    (_RELATIONSHIP[c] for c in codes if c in _RELATIONSHIP), "other"
                )
        return self._relationships

    def _account(self, number: int, key: str, model: Any) -> Unit:
        if not model.subject:
            raise FieldError("subject", "an account needs its patient")
        patient = self.resolve(model.subject[0], "Patient")
        guarantor = self._guarantor_of.get(patient, patient)
        identifier = next((i.value for i in model.identifier or [] if i.value), None)
        account_number = identifier or key.rsplit("/", 1)[-1]
        if not account_number.replace("-", "").replace(" ", "").replace(".", "").isalnum():
            raise FieldError("identifier", "account number must be letters and digits")
        account_number = account_number.replace(".", "")
        start = model.servicePeriod.start if model.servicePeriod else None
        opened = self._instant(start) if start else n.at_noon(
            datetime.now(UTC).date(), self.zone)
        unit = Unit(number)
        unit.accounts.append(AccountIn(key, guarantor, account_number, opened, "medical"))
        return unit

    def _instant(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return n.at_noon(value, self.zone)
        raise FieldError("date", "is not a date")

    def _account_for(self, patient: str, account_ref: Any = None) -> str:
        if account_ref is not None:
            return self.resolve(account_ref, "Account")
        accounts = self._accounts_of.get(patient, [])
        if len(accounts) != 1:
            raise FieldError("patient", "the patient needs exactly one Account in the file "
                                        "to post this amount to")
        return accounts[0]

    def _responsibility(self, totals: Any) -> int:
        amounts: dict[str, int] = {}
        for total in totals or []:
            for _system, code in _code_of(total.category):
                if total.amount is None or total.amount.value is None:
                    continue
                amounts[code] = amounts.get(code, 0) + n.money_cents(
                    str(total.amount.value), "total")
        for code in _RESPONSIBILITY:
            if code in amounts:
                return amounts[code]
        return sum(amounts.get(code, 0) for code in _PARTS)

    def _claim_total(self, number: int, key: str, model: Any) -> Unit:
        patient = self.resolve(model.patient, "Patient")
        account = self._account_for(patient)
        cents = self._responsibility(model.total)
        unit = Unit(number)
        if cents:
            unit.entries.append(EntryIn(key, account, "charge", cents,
                                        self._instant(model.created), patient_source_id=patient,
                                        description="patient responsibility (payer)"))
        return unit

    def _explanationofbenefit(self, number: int, key: str, model: Any) -> Unit:
        if model.status == "entered-in-error":
            return Unit(number, noted={"skipped_entered_in_error": 1})
        return self._claim_total(number, key, model)

    def _claimresponse(self, number: int, key: str, model: Any) -> Unit:
        if model.status == "entered-in-error":
            return Unit(number, noted={"skipped_entered_in_error": 1})
        return self._claim_total(number, key, model)

    def _invoice(self, number: int, key: str, model: Any) -> Unit:
        if model.status in ("cancelled", "entered-in-error", "draft"):
            return Unit(number, noted={"skipped_invoices": 1})
        patient = self.resolve(model.subject, "Patient") if model.subject else None
        if model.account is None and patient is None:
            raise FieldError("account", "an invoice needs an account or a subject")
        account = self._account_for(patient or "", model.account)
        money = model.totalNet or model.totalGross
        if money is None or money.value is None:
            raise FieldError("totalNet", "an invoice needs a total")
        cents = n.money_cents(str(money.value), "totalNet")
        when = self._instant(model.date) if model.date else n.at_noon(
            datetime.now(UTC).date(), self.zone)
        unit = Unit(number)
        if cents:
            unit.entries.append(EntryIn(key, account, "charge", cents, when,
                                        patient_source_id=patient, description="invoice"))
        return unit

    def _coverage(self, number: int, key: str, model: Any) -> Unit:
        if model.status in ("entered-in-error", "draft"):
            return Unit(number, noted={"skipped_coverages": 1})
        patient = self.resolve(model.beneficiary, "Patient")
        payer_name: str | None = None
        for payor in model.payor or []:
            if payor.reference:
                payer = self.resolve(payor, "Organization", "Patient", "RelatedPerson")
                payer_name = payer_name or payor.display or self._organization_names.get(payer)
            else:
                payer_name = payer_name or payor.display
        if not payer_name:
            raise FieldError("payor", "a coverage needs a payer with a name (display or an "
                             "Organization in the file)")
        member = model.subscriberId or next(
            (i.value for i in model.identifier or [] if i.value), None)
        group = next((c.value for c in model.class_fhir or []
                      if c.value and any(code == "group" for _s, code in _code_of([c.type]))),
                     None)
        period = model.period
        relationship = next((code for _system, code in _code_of(
            [model.relationship] if model.relationship else [])), None)
        unit = Unit(number)
        unit.coverages.append(CoverageIn(
            key, patient, payer_name[:200], str(model.status or "active"),
            member_id=str(member) if member else None,
            group_number=str(group) if group else None,
            period_start=_iso_day(period.start) if period and period.start else None,
            period_end=_iso_day(period.end) if period and period.end else None,
            relationship=relationship[:16] if relationship else None,
            priority=int(model.order) if model.order is not None else None,
        ))
        return unit

    def _consent(self, number: int, key: str, model: Any) -> Unit:
        if model.status != "active":
            return Unit(number, noted={"skipped_inactive_consents": 1})
        patient = self.resolve(model.patient, "Patient")
        guarantor = self._guarantor_of.get(patient, patient)
        kinds = [code for system, code in _code_of(model.category) if system == CONSENT_SYSTEM]
        if model.provision is not None:
            kinds += [code for system, code in _code_of(model.provision.action)
                      if system == CONSENT_SYSTEM]
        if not kinds or any(kind not in CONSENT_KINDS for kind in kinds):
            raise FieldError("category", "needs a communication-consent kind coded in "
                                         + CONSENT_SYSTEM)
        if model.dateTime is None:
            raise FieldError("dateTime", "a consent needs the time it was given")
        permit = model.provision is None or model.provision.type != "deny"
        unit = Unit(number)
        for kind in kinds:
            contact = "email" if kind == "email_use" else (
                "phone" if kind.startswith("tcpa") else None)
            unit.consents.append(ConsentIn(guarantor, kind, permit, self._instant(model.dateTime),
                                           method="fhir_import",
                                           channel="email" if contact == "email" else "all",
                                           contact_kind=contact))
        return unit
