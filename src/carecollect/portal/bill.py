"""The plain-language bill: each service in words, and how each charge came to what the
patient owes (pure functions, no I/O).

Procedure codes found in the demo data and common imports (CDT dental codes, CPT office
visits, labs, imaging) map to words in English and Spanish; any other code falls back to
the charge's own description. The words describe the kind of service only, at the level
of the statement the patient already received.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from carecollect.portal.i18n import register_messages

# code -> (English, Spanish)
SERVICE_WORDS: dict[str, tuple[str, str]] = {
    "D0120": ("Regular dental checkup", "Revisión dental de rutina"),
    "D0140": ("Dental exam for a specific problem", "Examen dental por un problema"),
    "D0150": ("Full dental exam (new patient)", "Examen dental completo (paciente nuevo)"),
    "D0210": ("Full set of dental X-rays", "Serie completa de radiografías dentales"),
    "D0220": ("Dental X-ray", "Radiografía dental"),
    "D0274": ("Dental X-rays (four bitewings)", "Radiografías dentales (cuatro de aleta)"),
    "D0330": ("Panoramic dental X-ray", "Radiografía dental panorámica"),
    "D1110": ("Teeth cleaning (adult)", "Limpieza dental (adulto)"),
    "D1120": ("Teeth cleaning (child)", "Limpieza dental (niño)"),
    "D1206": ("Fluoride varnish", "Barniz de flúor"),
    "D1351": ("Sealant on a tooth", "Sellador dental"),
    "D2140": ("Silver-colored filling", "Empaste plateado"),
    "D2330": ("Tooth-colored filling (front tooth)", "Empaste del color del diente (diente "
              "anterior)"),
    "D2391": ("Tooth-colored filling", "Empaste del color del diente"),
    "D2740": ("Crown (porcelain cap on a tooth)", "Corona (funda de porcelana en un diente)"),
    "D2750": ("Crown (porcelain and metal cap)", "Corona (funda de porcelana y metal)"),
    "D3310": ("Root canal (front tooth)", "Tratamiento de conducto (diente anterior)"),
    "D3330": ("Root canal (back tooth)", "Tratamiento de conducto (muela)"),
    "D4341": ("Deep cleaning below the gums", "Limpieza profunda debajo de las encías"),
    "D4910": ("Gum maintenance cleaning", "Limpieza de mantenimiento de encías"),
    "D7140": ("Tooth removal", "Extracción de un diente"),
    "D7210": ("Surgical tooth removal", "Extracción quirúrgica de un diente"),
    "99202": ("Office visit (new patient)", "Consulta en el consultorio (paciente nuevo)"),
    "99203": ("Office visit (new patient)", "Consulta en el consultorio (paciente nuevo)"),
    "99212": ("Short office visit", "Consulta breve en el consultorio"),
    "99213": ("Office visit", "Consulta en el consultorio"),
    "99214": ("Longer office visit", "Consulta más larga en el consultorio"),
    "99395": ("Yearly checkup", "Chequeo anual"),
    "80053": ("Blood test (metabolic panel)", "Análisis de sangre (panel metabólico)"),
    "85025": ("Blood count test", "Análisis de conteo sanguíneo"),
    "93000": ("Heart rhythm test (EKG)", "Prueba del ritmo del corazón (electrocardiograma)"),
    "71046": ("Chest X-ray", "Radiografía de tórax"),
    "36415": ("Blood draw", "Extracción de sangre"),
}

register_messages(
    {f"service.{code}": {"en": en, "es": es} for code, (en, es) in SERVICE_WORDS.items()}
    | {
        "service.generic": {"en": "Care you received", "es": "Atención que recibió"},
        "service.account": {"en": "Other account activity", "es": "Otros movimientos de la "
                            "cuenta"},
    }
)

CREDIT_KINDS_INSURANCE = ("insurance_payment",)
CREDIT_KINDS_ADJUSTMENT = ("insurance_adjustment", "write_off", "adjustment")


def service_key(codes: str | None) -> str | None:
    """The catalog key of the first known code in a charge's codes ("D1110, D0120")."""
    if not codes:
        return None
    for raw in codes.replace(";", ",").replace(" ", ",").split(","):
        code = raw.strip().upper()
        if code in SERVICE_WORDS:
            return f"service.{code}"
    return None


@dataclass(frozen=True, slots=True)
class ChargeFacts:
    entry_id: uuid.UUID
    posted_at: datetime
    amount_cents: int
    patient_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class CreditFacts:
    kind: str
    amount_cents: int  # negative: it lowers what is owed
    posted_at: datetime
    applies_to: uuid.UUID | None
    patient_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class LineAmounts:
    entry_id: uuid.UUID
    charge_cents: int
    insurance_cents: int
    adjustment_cents: int
    paid_cents: int
    owed_cents: int

    @property
    def why_key(self) -> str:
        if self.owed_cents <= 0:
            return "why.paid"
        if self.insurance_cents > 0:
            return "why.insurance_partial"
        return "why.no_insurance_payment"


@dataclass(frozen=True, slots=True)
class BillLine:
    """One service on the bill, in words and amounts (cents)."""

    entry_id: uuid.UUID
    service_key: str | None
    description: str
    service_date: date | None
    amounts: LineAmounts


def itemize(
    charges: list[ChargeFacts],
    credits: list[CreditFacts],
    open_cents: dict[uuid.UUID, int],
) -> list[LineAmounts]:
    """Explain each charge: what insurance paid, what was adjusted, what the patient paid,
    and what is still owed.

    What is owed comes from the payment domain's open-charge computation (the same
    figure payments allocate against). Insurance and adjustment lines aimed at a charge
    (`applies_to`, e.g. from an 835) count for it; undirected ones go to the oldest charge
    of the same patient posted before them that still has room, else the oldest with
    room. Whatever the charge lost beyond insurance and adjustments is shown as paid by
    the patient (payments and account credits), so each line adds up exactly.
    """
    ordered = sorted(charges, key=lambda c: (c.posted_at, c.entry_id))
    insurance = {c.entry_id: 0 for c in ordered}
    adjusted = {c.entry_id: 0 for c in ordered}
    room = {c.entry_id: c.amount_cents for c in ordered}

    def apply(target: uuid.UUID, cents: int, kind: str) -> int:
        take = min(cents, max(room[target], 0))
        if take <= 0:
            return cents
        room[target] -= take
        if kind in CREDIT_KINDS_INSURANCE:
            insurance[target] += take
        else:
            adjusted[target] += take
        return cents - take

    for credit in sorted(credits, key=lambda c: c.posted_at):
        if credit.kind not in CREDIT_KINDS_INSURANCE + CREDIT_KINDS_ADJUSTMENT:
            continue
        left = -credit.amount_cents
        if left <= 0:
            continue  # a positive staff adjustment raises the balance; not a credit
        if credit.applies_to in room:
            left = apply(credit.applies_to, left, credit.kind)
        candidates = [c for c in ordered if c.posted_at <= credit.posted_at
                      and (credit.patient_id is None or c.patient_id == credit.patient_id)]
        for charge in [*candidates, *ordered]:
            if left <= 0:
                break
            left = apply(charge.entry_id, left, credit.kind)
    out = []
    for charge in ordered:
        owed = max(open_cents.get(charge.entry_id, 0), 0)
        ins, adj = insurance[charge.entry_id], adjusted[charge.entry_id]
        # The open-charge figure is authoritative: when attribution and it disagree
        # (credits applied elsewhere first), trim the adjustments, then insurance.
        excess = ins + adj + owed - charge.amount_cents
        if excess > 0:
            cut = min(adj, excess)
            adj -= cut
            ins -= min(ins, excess - cut)
        paid = max(charge.amount_cents - ins - adj - owed, 0)
        out.append(LineAmounts(charge.entry_id, charge.amount_cents, ins, adj, paid, owed))
    return out
