"""A realistic synthetic practice for `carecollect demo` (synthetic people only).

Guarantors and patients across twelve states and every continental US time zone plus
Arizona and Hawaii (including Massachusetts, New York City, Florida's two zones, Oklahoma,
California and Washington); wireless and landline phones in the reserved fictional
555-01XX range whose area codes sometimes point to another zone than the address; e-mail
addresses on reserved example domains (some employer-provided); charges with dental or
medical procedure codes, insurance payments and contractual adjustments, patient payments,
an aging spread from current to over 120 days; flags, consents, revocations and contact
history. Every write goes through the domain services, so every one is encrypted and
audited exactly as real data would be.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.cli.common import Context, open_context
from carecollect.consent.service import consent_service
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.ledger.repository import ledger_repository
from carecollect.ledger.service import ledger_service
from carecollect.outreach.service import contact_history_service
from carecollect.patient.models import Guarantor
from carecollect.patient.schemas import (
    ContactPointCreate,
    GuarantorCreate,
    PatientCreate,
    PostalAddress,
)
from carecollect.patient.service import patient_service
from carecollect.tenant.service import only_organization

# (state, city, ZIP, area codes of the address) — ZIPs are real so zones resolve offline.
LOCALES = [
    ("MA", "Boston", "02118", ["617", "857"]),
    ("MA", "Worcester", "01608", ["508"]),
    ("NY", "New York", "10027", ["212", "917"]),
    ("NY", "Brooklyn", "11215", ["718", "347"]),
    ("NY", "Albany", "12207", ["518"]),
    ("FL", "Miami", "33130", ["305", "786"]),
    ("FL", "Pensacola", "32501", ["850"]),
    ("OK", "Tulsa", "74103", ["918"]),
    ("CA", "Los Angeles", "90012", ["213", "323"]),
    ("WA", "Seattle", "98101", ["206"]),
    ("TX", "Dallas", "75201", ["214", "469"]),
    ("CO", "Denver", "80202", ["303", "720"]),
    ("AZ", "Phoenix", "85004", ["602", "480"]),
    ("HI", "Honolulu", "96813", ["808"]),
    ("IL", "Chicago", "60601", ["312", "773"]),
    ("GA", "Atlanta", "30303", ["404"]),
]
LOCALE_WEIGHTS = [14, 6, 9, 7, 3, 7, 3, 5, 8, 5, 6, 4, 4, 3, 5, 4]
FIRST_NAMES = [
    "Avery",
    "Jordan",
    "Maya",
    "Luis",
    "Sofia",
    "Noah",
    "Amara",
    "Ethan",
    "Priya",
    "Mateo",
    "Hana",
    "Caleb",
    "Zoe",
    "Ibrahim",
    "Lena",
    "Marcus",
    "Rosa",
    "Theo",
    "Nia",
    "Diego",
    "Grace",
    "Kenji",
    "Olivia",
    "Samir",
    "Elena",
    "Jamal",
    "Ruth",
    "Owen",
    "Camila",
    "Felix",
]
LAST_NAMES = [
    "Alvarez",
    "Brennan",
    "Castillo",
    "Dawson",
    "Eriksen",
    "Fontaine",
    "Gallagher",
    "Hoang",
    "Iverson",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Montague",
    "Nakamura",
    "Okafor",
    "Pemberton",
    "Quintero",
    "Rasmussen",
    "Sandoval",
    "Thibodeaux",
    "Underwood",
    "Vasquez",
    "Whitfield",
    "Xiong",
    "Yamamoto",
    "Zielinski",
]
STREETS = ["Maple", "Harbor", "Cedar", "Summit", "Willow", "Lakeview", "Ridge", "Orchard"]
DENTAL = [
    ("D0120", "Periodic oral evaluation", 6500),
    ("D1110", "Adult cleaning", 11000),
    ("D0274", "Bitewing X-rays, four films", 7800),
    ("D2391", "Tooth-colored filling", 19500),
    ("D2740", "Porcelain crown", 125000),
    ("D3330", "Root canal, molar", 110000),
    ("D7140", "Tooth extraction", 22000),
    ("D4341", "Deep cleaning, one quadrant", 26000),
]
MEDICAL = [
    ("99213", "Office visit, established patient", 14500),
    ("99203", "Office visit, new patient", 19000),
    ("80053", "Metabolic blood panel", 6200),
    ("93000", "Electrocardiogram", 8500),
    ("71046", "Chest X-ray, two views", 12000),
]
FLAG_RATES = [
    ("dispute", 0.03),
    ("bankruptcy", 0.01),
    ("deceased", 0.005),
    ("attorney_represented", 0.01),
    ("cease_requested", 0.01),
    ("hardship", 0.02),
    ("do_not_contact", 0.005),
]
# Days since service, chosen so the aging spread looks like a real practice's.
AGE_SPREAD = [(0, 30, 30), (31, 60, 20), (61, 90, 15), (91, 120, 10), (121, 540, 25)]


@dataclass
class DemoSummary:
    guarantors: int = 0
    patients: int = 0
    accounts: int = 0
    contact_points: int = 0
    ledger_entries: int = 0
    consents: int = 0
    revocations: int = 0
    flags: int = 0
    contact_events: int = 0
    balance_cents: int = 0
    states: set[str] = field(default_factory=set)
    zones: set[str] = field(default_factory=set)
    generated: bool = True

    def lines(self) -> list[str]:
        dollars = f"${self.balance_cents / 100:,.2f}"
        if not self.generated:
            return [
                f"demo practice already present: {self.guarantors} guarantors, "
                f"{self.accounts} accounts, open balance {dollars}"
            ]
        return [
            f"demo practice built {self.guarantors} guarantors, {self.patients} patients, "
            f"{self.accounts} accounts",
            f"  {self.contact_points} contact points, {self.consents} consents, "
            f"{self.revocations} revocations, {self.flags} flags, "
            f"{self.contact_events} contact events, {self.ledger_entries} ledger entries",
            f"  open balance {dollars} across {len(self.states)} states and "
            f"{len(self.zones)} time zones",
        ]


def _pick_age(rng: random.Random) -> int:
    low, high, _ = rng.choices(AGE_SPREAD, weights=[w for *_, w in AGE_SPREAD])[0]
    return rng.randint(low, high)


def _phone(rng: random.Random, area: str) -> str:
    return f"+1{area}55501{rng.randint(0, 99):02d}"


def build_demo(data_dir: Path, *, patients: int, seed: int) -> DemoSummary:
    """Fill the data directory's only organization with `patients` synthetic patients."""
    ctx = open_context(data_dir)
    try:
        with ctx.db.system_session() as session:
            org = only_organization(session)
            org_id, kind = org.id, org.entity_kind
        with ctx.db.tenant_session(org_id) as session:
            existing = session.scalar(select(func.count(Guarantor.id))) or 0
        if existing:
            return _existing_summary(ctx, org_id)
        keys = ctx.organization_keys(org_id)
        summary = DemoSummary()
        rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        now = datetime.now(UTC).replace(microsecond=0)
        catalog = DENTAL if kind == "dental_practice" else MEDICAL
        made = 0
        with Progress(transient=True) as progress:
            task = progress.add_task("building demo practice", total=patients)
            while made < patients:
                batch = min(200, patients - made)
                with ctx.db.tenant_session(org_id) as session:
                    for _ in range(batch):
                        made += _household(
                            session, keys, rng, now, catalog, summary, limit=patients - made
                        )
                        if made >= patients:
                            break
                progress.update(task, completed=made)
        with ctx.db.tenant_session(org_id) as session:
            summary.balance_cents = ledger_repository.portfolio_totals(session)[1]
        return summary
    finally:
        ctx.close()


def _existing_summary(ctx: Context, org_id: uuid.UUID) -> DemoSummary:
    summary = DemoSummary(generated=False)
    with ctx.db.tenant_session(org_id) as session:
        summary.guarantors = session.scalar(select(func.count(Guarantor.id))) or 0
        summary.accounts, summary.balance_cents = ledger_repository.portfolio_totals(session)
    return summary


def _household(
    session: Session,
    keys: OrganizationKeys,
    rng: random.Random,
    now: datetime,
    catalog: list[tuple[str, str, int]],
    summary: DemoSummary,
    *,
    limit: int,
) -> int:
    """One guarantor with 1-3 patients (never more than `limit`); returns patients made."""
    actor = Actor.system("demo")
    state, city, zip5, areas = rng.choices(LOCALES, weights=LOCALE_WEIGHTS)[0]
    last = rng.choice(LAST_NAMES)
    adult_dob = date(rng.randint(1950, 2002), rng.randint(1, 12), rng.randint(1, 28))
    guarantor = patient_service.create_guarantor(
        session,
        keys=keys,
        actor=actor,
        data=GuarantorCreate(
            first_name=rng.choice(FIRST_NAMES),
            last_name=last,
            date_of_birth=adult_dob,
            preferred_language="es" if rng.random() < 0.15 else "en",
        ),
    )
    summary.guarantors += 1
    gid = guarantor.id
    postal = patient_service.add_contact_point(
        session,
        keys=keys,
        actor=actor,
        data=ContactPointCreate(
            guarantor_id=gid,
            kind="postal",
            is_primary=True,
            value=PostalAddress(
                line1=f"{rng.randint(10, 9999)} {rng.choice(STREETS)} St",
                city=city,
                state=state,
                zip=zip5,
            ),
        ),
    )
    summary.states.add(state)
    if postal.address_tz:
        summary.zones.add(postal.address_tz)
    # One in six phones keeps an area code from elsewhere (people move, numbers don't).
    area = rng.choice(areas) if rng.random() > 1 / 6 else rng.choice(rng.choice(LOCALES)[3])
    line_type = "wireless" if rng.random() < 0.8 else "landline"
    phone = patient_service.add_contact_point(
        session,
        keys=keys,
        actor=actor,
        data=ContactPointCreate(
            guarantor_id=gid,
            kind="phone",
            value=_phone(rng, area),
            line_type=line_type,
            verified=rng.random() < 0.5,
            is_primary=True,
        ),
    )
    summary.zones.update(phone.area_code_tzs)
    points = [postal, phone]
    email = None
    if rng.random() < 0.75:
        employer = rng.random() < 0.1
        domain = "work.example.com" if employer else rng.choice(["example.com", "example.org"])
        email = patient_service.add_contact_point(
            session,
            keys=keys,
            actor=actor,
            data=ContactPointCreate(
                guarantor_id=gid,
                kind="email",
                employer_provided=employer,
                value=f"{last.lower()}.{rng.randint(1, 99999)}@{domain}",
            ),
        )
        points.append(email)
    summary.contact_points += len(points)

    household = min(limit, rng.choices([1, 2, 3], weights=[60, 28, 12])[0])
    patient_ids = []
    for index in range(household):
        is_self = index == 0 and rng.random() < 0.7
        dob = (
            adult_dob
            if is_self
            else date(rng.randint(2008, 2022), rng.randint(1, 12), rng.randint(1, 28))
        )
        patient = patient_service.create_patient(
            session,
            keys=keys,
            actor=actor,
            data=PatientCreate(
                guarantor_id=gid,
                first_name=rng.choice(FIRST_NAMES),
                last_name=last,
                date_of_birth=dob,
                relationship_to_guarantor="self" if is_self else "child",
            ),
        )
        patient_ids.append(patient.id)
    summary.patients += household

    account_ids = []
    for _ in range(rng.choices([1, 2], weights=[80, 20])[0]):
        age = _pick_age(rng)
        opened = now - timedelta(days=age + rng.randint(0, 30))
        account = ledger_service.open_account(
            session,
            keys=keys,
            actor=actor,
            guarantor_id=gid,
            account_number=f"A{rng.randint(10_000_000, 99_999_999)}",
            opened_at=opened,
            debt_kind="dental" if catalog is DENTAL else "medical",
        )
        account_ids.append(account.id)
        summary.accounts += 1
        for _ in range(rng.randint(1, 3)):
            code, words, price = rng.choice(catalog)
            service_day = now - timedelta(days=age)
            posted = service_day + timedelta(hours=rng.randint(1, 48))
            pid = rng.choice(patient_ids)
            ledger_service.post(
                session,
                keys=keys,
                actor=actor,
                account_id=account.id,
                kind="charge",
                amount_cents=price,
                posted_at=posted,
                patient_id=pid,
                service_date=service_day.date(),
                procedure_codes=code,
                description=words,
            )
            summary.ledger_entries += 1
            if rng.random() < 0.7:  # insured: payer pays part, contractual adjustment
                paid = price * rng.randint(40, 70) // 100
                adjusted = price * rng.randint(5, 20) // 100
                later = posted + timedelta(days=rng.randint(14, 40))
                ledger_service.post(
                    session,
                    keys=keys,
                    actor=actor,
                    account_id=account.id,
                    kind="insurance_payment",
                    amount_cents=paid,
                    posted_at=later,
                    patient_id=pid,
                )
                ledger_service.post(
                    session,
                    keys=keys,
                    actor=actor,
                    account_id=account.id,
                    kind="insurance_adjustment",
                    amount_cents=adjusted,
                    posted_at=later,
                    patient_id=pid,
                )
                summary.ledger_entries += 2
            if rng.random() < 0.25:
                ledger_service.post(
                    session,
                    keys=keys,
                    actor=actor,
                    account_id=account.id,
                    kind="patient_payment",
                    amount_cents=rng.randint(10, 60) * 100,
                    posted_at=posted + timedelta(days=rng.randint(1, 30)),
                )
                summary.ledger_entries += 1

    if line_type == "wireless" and rng.random() < 0.7:
        consent_service.grant(
            session,
            keys=keys,
            actor=actor,
            guarantor_id=gid,
            contact_point_id=phone.id,
            kind="tcpa_pec",
            granted_at=now - timedelta(days=rng.randint(20, 700)),
            method="intake_form",
            wording_version="intake-2025-01",
        )
        summary.consents += 1
        if rng.random() < 0.07:
            consent_service.revoke(
                session,
                keys=keys,
                actor=actor,
                guarantor_id=gid,
                contact_point_id=phone.id,
                channel="sms",
                received_at=now - timedelta(days=rng.randint(1, 19)),
                method="sms_keyword",
                text="STOP",
            )
            summary.revocations += 1
    if email is not None and rng.random() < 0.6:
        consent_service.grant(
            session,
            keys=keys,
            actor=actor,
            guarantor_id=gid,
            contact_point_id=email.id,
            kind="email_use",
            granted_at=now - timedelta(days=rng.randint(20, 700)),
            method="portal",
            wording_version="portal-2025-03",
        )
        summary.consents += 1
    for kind, rate in FLAG_RATES:
        if rng.random() < rate:
            patient_service.raise_flag(
                session,
                keys=keys,
                actor=actor,
                guarantor_id=gid,
                kind=kind,
                raised_at=now - timedelta(days=rng.randint(1, 60)),
                account_id=account_ids[0] if kind == "dispute" else None,
                in_writing=rng.random() < 0.5,
            )
            summary.flags += 1
    for _ in range(rng.choices([0, 1, 2, 3, 5], weights=[35, 25, 20, 12, 8])[0]):
        channel = rng.choice(["call", "call", "sms", "email", "letter"])
        point = {"call": phone, "sms": phone, "letter": postal}.get(channel, email or postal)
        if channel == "email" and email is None:
            channel = "letter"
        outcome = {
            "call": rng.choice(
                [
                    "not_connected",
                    "no_answer",
                    "voicemail_lcm",
                    "voicemail_reached_no_message",
                    "conversation_rpc",
                ]
            ),
        }.get(channel, "delivered")
        contact_history_service.record_contact(
            session,
            keys=keys,
            actor=actor,
            guarantor_id=gid,
            contact_point_id=point.id,
            occurred_at=now - timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 10)),
            channel=channel,
            direction="outbound",
            outcome=outcome,
            dialer="manual" if channel == "call" else None,
            account_ids=account_ids,
        )
        summary.contact_events += 1
    return household
