"""The compliance scenario model (RULES.md §0.3) and its strict JSON reader.

The model is a tree of frozen standard-library dataclasses. They are validated once by
Pydantic (``TypeAdapter`` with ``extra='forbid'`` and strict types) when a scenario line is
read; the engine then works on the plain dataclasses, so building a context from stored
state (``Context(...)``) costs no validation on the hot path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, TypeAdapter, ValidationError

_STRICT = ConfigDict(extra="forbid", strict=True)

Profile = Literal["strict", "legal_minimum"]
Channel = Literal[
    "call", "sms", "email", "letter", "voicemail", "credit_report_furnish", "eca",
    "social_media_public",
]
HistoryChannel = Literal["call", "sms", "email", "letter", "voicemail"]
Dialer = Literal["manual", "autodialer", "prerecorded"]
Recipient = Literal[
    "debtor", "spouse", "parent", "employer", "personal_representative", "attorney",
    "third_party_location", "consumer_reporting_agency", "court",
]
ContentTag = Literal[
    "neutral_notice", "practice_name_neutral", "practice_name_sensitive", "patient_first_name",
    "balance_amount", "account_last4", "statement_date", "date_of_service",
    "service_description", "procedure_or_cpt", "diagnosis_or_icd", "provider_specialty",
    "medication", "payment_link_opaque", "payment_link_with_phi", "debt_collection_statement",
    "marketing_offer", "lcm_required_only", "lcm_plus_optional", "threat_of_suit",
    "pay_within_deadline", "fap_notice", "plain_language_summary",
]
ConsentKind = Literal[
    "tcpa_pec", "tcpa_pewc", "email_use", "esign", "direct_prior_consent_extra_calls",
    "inconvenient_time_ok",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Creditor:
    __pydantic_config__ = _STRICT
    type: Literal["first_party", "third_party"]
    entity_kind: Literal[
        "dental_practice", "physician_group", "hospital_nonprofit_501r",
        "behavioral_health_practice", "collection_agency",
    ]
    display_name: str
    name_indicates_debt_collection: bool = False
    hipaa_role: Literal["covered_entity", "business_associate"] = "covered_entity"
    baa_in_place: bool = False
    provider_license_state: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Designation:
    __pydantic_config__ = _STRICT
    kind: Literal["time", "place", "day"]
    value: str
    at: AwareDatetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConfidentialRequest:
    __pydantic_config__ = _STRICT
    at: AwareDatetime
    instruction: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FamilyInvolvement:
    __pydantic_config__ = _STRICT
    person: str
    recorded_at: AwareDatetime
    basis: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Debtor:
    __pydantic_config__ = _STRICT
    person_id: str
    state: str
    zip: str
    mailing_tz: str
    city_is_nyc: bool = False
    other_known_tz: tuple[str, ...] = ()
    deceased: bool = False
    minor: bool = False
    designated_inconvenient: tuple[Designation, ...] = ()
    confidential_comm_request: ConfidentialRequest | None = None
    patient_email_risk_acknowledged: bool = False
    family_payment_involvement: tuple[FamilyInvolvement, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Nsa:
    __pydantic_config__ = _STRICT
    status: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Debt:
    __pydantic_config__ = _STRICT
    debt_ids: tuple[str, ...]
    kind: Literal["medical", "dental"]
    balance_cents: int
    first_delinquency_date: dt.date | None = None
    first_post_discharge_statement_date: dt.date | None = None
    placed_with_agency_at: AwareDatetime | None = None
    sol_expired: bool = False
    nsa: Nsa | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RndCheck:
    __pydantic_config__ = _STRICT
    date: dt.date
    result: Literal["no", "yes", "no_data"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ContactPoint:
    __pydantic_config__ = _STRICT
    id: str
    type: Literal["phone", "email", "postal"]
    value: str
    line_type: Literal["wireless", "landline", "voip", "hospital_patient_room"] | None = None
    area_code_tz: str | None = None
    owner: Literal["debtor", "spouse", "parent", "employer", "unknown"] = "debtor"
    employer_provided: bool = False
    source: str = ""
    rnd_check: RndCheck | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Consent:
    __pydantic_config__ = _STRICT
    contact_point: str | None
    kind: ConsentKind
    granted_at: AwareDatetime
    given_to: Literal["creditor", "debt_collector"] = "creditor"
    method: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    __pydantic_config__ = _STRICT
    contact_point: str | None
    channel: str
    received_at: AwareDatetime
    method: str = ""
    text: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent:
    __pydantic_config__ = _STRICT
    at: AwareDatetime
    channel: HistoryChannel
    direction: Literal["outbound", "inbound"]
    contact_point: str | None = None
    person: str = "debtor"
    debt_ids: tuple[str, ...] = ()
    dialer: Dialer | None = None
    outcome: str | None = None
    text: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AttorneyFlag:
    __pydantic_config__ = _STRICT
    since: AwareDatetime
    attorney_name_known: bool
    attorney_unresponsive_days: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DisputeFlag:
    __pydantic_config__ = _STRICT
    received_at: AwareDatetime
    in_writing: bool
    verification_sent_at: AwareDatetime | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BankruptcyFlag:
    __pydantic_config__ = _STRICT
    filed_at: AwareDatetime
    chapter: int
    status: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CeaseFlag:
    __pydantic_config__ = _STRICT
    received_at: AwareDatetime
    in_writing: bool
    scope: str = "all"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ValidationFlag:
    __pydantic_config__ = _STRICT
    initial_communication_at: AwareDatetime
    notice_provided_at: AwareDatetime | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FapApplication:
    __pydantic_config__ = _STRICT
    received_at: AwareDatetime
    status: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FapFlag:
    __pydantic_config__ = _STRICT
    eca_notice_sent_at: AwareDatetime | None = None
    pls_included: bool = False
    oral_notice_attempt_at: AwareDatetime | None = None
    application: FapApplication | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Flags:
    __pydantic_config__ = _STRICT
    attorney_represented: AttorneyFlag | None = None
    disputed: DisputeFlag | None = None
    bankruptcy: BankruptcyFlag | None = None
    cease_requested: CeaseFlag | None = None
    validation: ValidationFlag | None = None
    fap: FapFlag | None = None
    credit_reported: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Content:
    __pydantic_config__ = _STRICT
    template: str = ""
    subject: str | None = None
    body_summary: str = ""
    contains: tuple[ContentTag, ...] = ()
    url: str | None = None
    includes_opt_out: bool = False
    includes_debt_collector_disclosure: bool = False
    marketing: bool = False
    encrypted_or_portal: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProposedAction:
    __pydantic_config__ = _STRICT
    channel: Channel
    time: AwareDatetime
    recipient: Recipient
    contact_point: str | None = None
    dialer: Dialer | None = None
    debt_ids: tuple[str, ...] = ()
    content: Content = dataclasses.field(default_factory=Content)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Everything the engine may look at for one proposed event (RULES.md §0.3 `input`)."""

    __pydantic_config__ = _STRICT
    as_of: AwareDatetime
    policy_profile: Profile
    creditor: Creditor
    debtor: Debtor
    debt: Debt
    proposed_action: ProposedAction
    contact_points: tuple[ContactPoint, ...] = ()
    consents: tuple[Consent, ...] = ()
    revocations: tuple[Revocation, ...] = ()
    contact_history: tuple[HistoryEvent, ...] = ()
    flags: Flags = dataclasses.field(default_factory=Flags)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One line of a scenario file; test-only keys are accepted and ignored (PRODUCT.md)."""

    __pydantic_config__ = _STRICT
    id: str
    input: Context
    rule_ids: Any = None
    description: Any = None
    citation: Any = None
    expected: Any = None
    expected_reasons: Any = None
    expected_modification: Any = None


_SCENARIO = TypeAdapter(Scenario)
_EXPECTED = frozenset({"expected", "expected_reasons", "expected_modification"})
_CONTEXT = TypeAdapter(Context)


class ScenarioError(ValueError):
    """A scenario line that cannot be decided. The message never echoes input values."""

    def __init__(self, message: str, scenario_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.scenario_id = scenario_id


def _describe(exc: ValidationError) -> str:
    # Only locations and error kinds: input values may be PHI (PRODUCT.md non-negotiables).
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(line)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_scenario(line: str) -> Scenario:
    """Parse and validate one JSON line; raise ScenarioError with a PHI-free message."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"invalid JSON at column {exc.colno}: {exc.msg}", None) from None
    scenario_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(scenario_id, str):
        scenario_id = None
    if not isinstance(raw, dict):
        raise ScenarioError("a scenario must be a JSON object", None)
    extra_expected = [k for k in raw if k.startswith("expected") and k not in _EXPECTED]
    if extra_expected:
        # Any `expected*` key is test metadata (PRODUCT.md): drop it, validate the rest.
        line = json.dumps({k: v for k, v in raw.items() if k not in extra_expected})
    try:
        scenario = _SCENARIO.validate_json(line)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc), scenario_id) from None
    _check_consistency(scenario.input, scenario_id)
    return dataclasses.replace(scenario, input=share_offsets(scenario.input))


def parse_context(data: dict[str, Any]) -> Context:
    """Validate a context given as a JSON-like dict (the scenario's `input`)."""
    try:
        ctx = _CONTEXT.validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ScenarioError(_describe(exc), None) from None
    _check_consistency(ctx, None)
    return share_offsets(ctx)


_OFFSETS: dict[dt.timedelta, dt.tzinfo] = {}


def _shared(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        if offset is None:
            return value
        shared = _OFFSETS.get(offset)
        if shared is None:
            shared = _OFFSETS.setdefault(offset, dt.UTC if not offset else dt.timezone(offset))
        return value if value.tzinfo is shared else value.replace(tzinfo=shared)
    if isinstance(value, tuple):
        items = tuple(_shared(item) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = _shared(old)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def share_offsets(ctx: Context) -> Context:
    """The same context with every timestamp's offset as one shared `datetime.timezone`
    per offset (same instants, offsets, local dates and ISO text). Validation gives each
    timestamp its own tzinfo object, and comparing two aware datetimes whose tzinfo
    objects differ costs two utcoffset() calls: the engine compares timestamps a great
    deal (history against the proposed time, grants against revocations)."""
    result: Context = _shared(ctx)
    return result


def _check_consistency(ctx: Context, scenario_id: str | None) -> None:
    """Reject impossible inputs the types alone cannot catch (fail closed, exit code 2)."""
    from carecollect.compliance.zones import is_valid_zone

    zones = [ctx.debtor.mailing_tz, *ctx.debtor.other_known_tz]
    zones += [cp.area_code_tz for cp in ctx.contact_points if cp.area_code_tz]
    for zone in zones:
        if not is_valid_zone(zone):
            raise ScenarioError("unknown IANA time zone in input", scenario_id)
    ids = [cp.id for cp in ctx.contact_points]
    if len(set(ids)) != len(ids):
        raise ScenarioError("duplicate contact point id", scenario_id)
    action = ctx.proposed_action
    if action.contact_point is not None and action.contact_point not in ids:
        raise ScenarioError("proposed_action.contact_point is not a known contact point",
                            scenario_id)
    if action.channel in ("call", "sms", "voicemail"):
        cp = next((c for c in ctx.contact_points if c.id == action.contact_point), None)
        if cp is None or cp.type != "phone":
            raise ScenarioError(f"a {action.channel} needs a phone contact point", scenario_id)
    if action.channel == "email":
        cp = next((c for c in ctx.contact_points if c.id == action.contact_point), None)
        if cp is None or cp.type != "email":
            raise ScenarioError("an email needs an email contact point", scenario_id)
    if ctx.as_of.utcoffset() is None or action.time.utcoffset() is None:
        raise ScenarioError("timestamps must carry an offset", scenario_id)
    if abs((ctx.as_of - action.time).total_seconds()) > 366 * 86400:
        raise ScenarioError("as_of and proposed_action.time are more than a year apart",
                            scenario_id)
