"""The compliance engine: `evaluate(context) -> Decision` (ARCHITECTURE.md §7).

Pure and deterministic: no I/O and no clock reads. Rules are filtered once per
(profile, sender kind, channel, jurisdiction) and cached; each applicable rule returns a
Finding or None; PLAT-DECISION turns the findings into `block`, `allow_with_modification` or
`allow`. When only time and frequency rules block, `next_allowed_at` is found by re-evaluating
the same action at the latest of the rules' earliest-pass instants until it is allowed (a
fixpoint: each step is a lower bound, so the first allowed step is the earliest instant).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import Facts
from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.registry import BY_ID, ORDER, RULES, RuleMeta
from carecollect.compliance.rules import CHECKS, Finding
from carecollect.compliance.scenario import Context, ProposedAction

# California imports FDCPA 1692b-1692j for creditors (Civ. 1788.17; RULES.md §4).
CA_IMPORTS = frozenset({"REGF-TIME-8TO9", "REGF-ATTY", "REGF-WORK-PLACE", "REGF-3P",
                        "REGF-CEASE"})
# Long enough for the 365-day NCRA wait and the 240-day 501(r) period.
MAX_SEARCH = dt.timedelta(days=400)
MODIFICATION_ORDER = (
    "strip_to_C0", "strip_to_C1", "strip_diagnosis_codes", "use_opaque_link",
    "use_neutral_subject", "use_neutral_display_name", "limit_to_limited_content_message",
    "append_opt_out", "add_debt_collector_disclosure", "add_identification_and_automated_opt_out",
    "use_model_form_b1", "add_colorado_medical_debt_notice", "append_fap_notice",
    "report_as_disputed", "manual_live_call_only",
)
_MOD_RANK = {m: i for i, m in enumerate(MODIFICATION_ORDER)}

# Rules that can only fire when a fact is present: skipped (by the cached filter) when it is
# absent. Each listed check returns None without that fact; "never" marks checks that only
# carry metadata and are cited by other rules.
NEEDS: dict[str, str] = {
    "REGF-ATTY": "attorney", "REGF-CEASE": "cease", "PLAT-BANKRUPTCY": "bankruptcy",
    "PLAT-DECEASED": "deceased", "REGF-DECEASED": "deceased", "HIPAA-PERSONAL-REP": "deceased",
    "MED-NSA-BALANCE": "nsa", "MED-NSA-PPDR": "nsa", "REGF-UNAUTH-AMOUNT": "nsa",
    "REGF-VAL-TIMING": "validation", "REGF-OVERSHADOW": "validation",
    "REGF-DISPUTE-CEASE": "dispute", "REGF-TBD": "sol_expired",
    "REGF-TIME-DESIGNATED": "designations", "REGF-PLACE": "designations",
    "REGF-WORK-PLACE": "designations", "STATE-MA-WORK": "designations",
    "HIPAA-CONF-COMM": "confidential", "TCPA-MARKETING-PEWC": "marketing",
    "TCPA-SOLICIT-HOURS": "marketing", "STATE-FL-TELEMKT": "marketing",
    "STATE-OK-TSA": "marketing", "STATE-MD-SPAM": "marketing",
    "REGF-3P": "other_recipient", "REGF-LOCATION": "other_recipient",
    "HIPAA-FAMILY": "other_recipient", "STATE-MA-HOUSEHOLD": "other_recipient",
    "PLAT-REVOKE-NLU": "inbound_text", "MED-501R-ECA-WAIT": "hospital",
    "MED-501R-30DAY-NOTICE": "hospital", "MED-501R-APP-PERIOD": "hospital",
    "MED-501R-BILLING-NOTICE": "hospital", "HIPAA-BAA": "vendor",
    "HIPAA-TPO-PAYMENT": "vendor", "TCPA-PRERECORDED-ID": "prerecorded",
    "TCPA-PRERECORDED-RESIDENTIAL": "prerecorded", "STATE-OK-ADAD": "prerecorded",
    **dict.fromkeys(("REGF-CALL-EXCLUSIONS", "REGF-VAL-PERIOD", "TCPA-HC-EXEMPT-NA",
                     "TCPA-REVOKE-ANYMEANS", "TCPA-REVOKE-10BD", "TCPA-REVOKE-ALL",
                     "TCPA-RECONSENT", "STATE-CA-ROSENTHAL", "STATE-SUNDAY",
                     "PLAT-HONOR-IMMEDIATELY", "PLAT-RND-CADENCE"), "never"),
}


def features(ctx: Context) -> frozenset[str]:
    """The facts present in a context that gate rules in NEEDS."""
    flags, debtor, action = ctx.flags, ctx.debtor, ctx.proposed_action
    content = action.content
    have = []
    if flags.attorney_represented is not None:
        have.append("attorney")
    if flags.cease_requested is not None:
        have.append("cease")
    if flags.bankruptcy is not None:
        have.append("bankruptcy")
    if debtor.deceased:
        have.append("deceased")
    if ctx.debt.nsa is not None:
        have.append("nsa")
    if flags.validation is not None:
        have.append("validation")
    if flags.disputed is not None:
        have.append("dispute")
    if ctx.debt.sol_expired:
        have.append("sol_expired")
    if debtor.designated_inconvenient:
        have.append("designations")
    if debtor.confidential_comm_request is not None:
        have.append("confidential")
    if content.marketing or "marketing_offer" in content.contains:
        have.append("marketing")
    if action.recipient != "debtor":
        have.append("other_recipient")
    for e in ctx.contact_history:
        if e.text and e.direction == "inbound":
            have.append("inbound_text")
            break
    if ctx.creditor.entity_kind == "hospital_nonprofit_501r":
        have.append("hospital")
    if ctx.creditor.type == "third_party" or ctx.creditor.hipaa_role == "business_associate":
        have.append("vendor")
    if action.dialer == "prerecorded":
        have.append("prerecorded")
    return frozenset(have)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    decision: str
    reasons: tuple[str, ...]
    modification: str | None
    next_allowed_at: dt.datetime | None
    explanation: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    zone: str = "UTC"

    def next_allowed_iso(self) -> str | None:
        """`next_allowed_at` in the debtor's primary (mailing) zone, with its offset."""
        if self.next_allowed_at is None:
            return None
        return self.next_allowed_at.astimezone(tz.zone(self.zone)).isoformat()

    def as_json(self, scenario_id: str) -> dict[str, Any]:
        return {
            "id": scenario_id,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "modification": self.modification,
            "next_allowed_at": self.next_allowed_iso(),
            "explanation": list(self.explanation),
        }


def _jurisdiction_ok(meta: RuleMeta, state: str, nyc: bool, provider_ny: bool,
                     overlay: bool) -> bool:
    j = meta.jurisdiction
    if j == "US":
        return True
    if j == "ORG":
        return overlay
    if j == "NYC":
        return nyc
    if j == "NY":
        return provider_ny
    return j == state


def _scope_ok(meta: RuleMeta, profile: str, collector: bool, state: str) -> bool:
    s = meta.scope
    if s == "everyone":
        return True
    if s == "platform":
        return profile == "strict"
    if s == "collector":
        return collector
    # star: collectors always; first-party under strict; CA creditors for 1788.17 imports.
    return collector or profile == "strict" or (state == "CA" and meta.id in CA_IMPORTS)


@functools.lru_cache(maxsize=4096)
def applicable_rules(profile: str, collector: bool, channel: str, state: str, nyc: bool,
                     provider_ny: bool, overlay: bool, have: frozenset[str] | None = None
                     ) -> tuple[tuple[Any, RuleMeta | None], ...]:
    """(check, meta-if-dated) of the event rules that can apply, before effective dates.

    The metadata is kept only for rules with effective dates, so the hot loop checks dates
    for those few rules alone.
    """
    out: list[tuple[Any, RuleMeta | None]] = []
    for meta in RULES:
        if meta.kind != "event" or channel not in meta.channels:
            continue
        if not _scope_ok(meta, profile, collector, state):
            continue
        if not _jurisdiction_ok(meta, state, nyc, provider_ny, overlay):
            continue
        need = NEEDS.get(meta.id)
        if have is not None and need is not None and need not in have:
            continue
        dated = meta.effective_from is not None or meta.effective_to is not None
        out.append((CHECKS[meta.id], meta if dated else None))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _citable(rule_id: str, profile: str, collector: bool, state: str, nyc: bool,
             provider_ny: bool, overlay: bool) -> bool:
    meta = BY_ID[rule_id]
    if meta.kind == "convention":
        return True
    return _scope_ok(meta, profile, collector, state) and \
        _jurisdiction_ok(meta, state, nyc, provider_ny, overlay)


def _rules_for(ctx: Context, f: Facts, overlay: OrgOverlay | None
               ) -> tuple[tuple[Any, ...], tuple[tuple[Any, RuleMeta | None], ...]]:
    """The rule-list key and the applicable rules of a context (independent of time)."""
    provider_ny = (ctx.creditor.provider_license_state or "").upper() == "NY"
    key = (f.profile, f.collector, f.channel, f.state, ctx.debtor.city_is_nyc, provider_ny,
           overlay is not None)
    return key, applicable_rules(*key, features(ctx))


def _decide(ctx: Context, overlay: OrgOverlay | None, f: Facts | None = None,
            rules: tuple[tuple[Any, ...], tuple[tuple[Any, RuleMeta | None], ...]] | None = None
            ) -> Decision:
    if f is None:
        f = Facts(ctx, overlay)
    key, applicable = rules if rules is not None else _rules_for(ctx, f, overlay)
    findings: list[Finding] = []
    on, profile = f.on, f.profile
    for fn, dated in applicable:
        if dated is not None and not dated.in_force(on, profile):
            continue
        found = fn(f)
        if found is not None:
            findings.append(found)
    zone = ctx.debtor.mailing_tz
    if not findings:
        return Decision("allow", (), None, None, ("all applicable rules pass",), (), zone)
    blocks = [x for x in findings if x.effect == "block"]
    chosen = blocks or findings
    cited: dict[str, None] = {}
    ca_creditor = f.state == "CA" and not f.collector
    for x in chosen:
        cited[x.rule_id] = None
        for extra in x.also:
            if extra in BY_ID and _citable(extra, key[0], key[1], key[3], key[4], key[5],
                                           key[6]):
                cited[extra] = None
        if ca_creditor and x.rule_id in CA_IMPORTS:
            cited["STATE-CA-ROSENTHAL"] = None
    reasons = tuple(sorted(cited, key=lambda r: ORDER[r]))
    chosen.sort(key=lambda x: ORDER[x.rule_id])
    explanation = tuple(f"{x.rule_id}: {x.explanation}" for x in chosen)
    if blocks:
        return Decision("block", reasons, None, None, explanation, tuple(findings), zone)
    codes: dict[str, None] = {}
    for x in findings:
        for code in (x.modification or "").split(";"):
            if code:
                codes[code] = None
    # strip_to_C0 subsumes strip_to_C1.
    if "strip_to_C0" in codes:
        codes.pop("strip_to_C1", None)
    modification = "; ".join(sorted(codes, key=lambda c: (_MOD_RANK.get(c, 99), c)))
    return Decision("allow_with_modification", reasons, modification, None, explanation,
                    tuple(findings), zone)


def at_time(ctx: Context, when: dt.datetime) -> Context:
    """The same context with the action moved to `when` (as_of moves by the same delta)."""
    delta = when - ctx.proposed_action.time
    action = dataclasses.replace(ctx.proposed_action, time=when)
    return dataclasses.replace(ctx, as_of=ctx.as_of + delta, proposed_action=action)


def evaluate(ctx: Context, overlay: OrgOverlay | None = None) -> Decision:
    """Decide one proposed event. Deterministic for a given context and overlay."""
    f = Facts(ctx, overlay)
    rules = _rules_for(ctx, f, overlay)
    first = _decide(ctx, overlay, f, rules)
    if first.decision != "block":
        return first
    start = ctx.proposed_action.time
    current = first
    when = start
    # The candidate zones and the rule list do not depend on the instant: each step of
    # the fixpoint re-evaluates the same context at a later time (Facts(when=...) is
    # at_time() without copying the context).
    zones = f.zones
    for _ in range(64):
        blocking = [x for x in current.findings if x.effect == "block"]
        if any(x.earliest is None for x in blocking):
            return first
        nxt = max(x.earliest for x in blocking if x.earliest is not None)
        if nxt <= when or nxt - start > MAX_SEARCH:
            return first
        when = nxt
        current = _decide(ctx, overlay, Facts(ctx, overlay, when, zones), rules)
        if current.decision != "block":
            # The Decision constructor: dataclasses.replace() costs several times more.
            return Decision(first.decision, first.reasons, first.modification,
                            when.astimezone(dt.UTC), first.explanation, first.findings,
                            first.zone)
    return first


def evaluate_action(ctx: Context, action: ProposedAction, as_of: dt.datetime,
                    overlay: OrgOverlay | None = None) -> Decision:
    """ARCHITECTURE.md §7 signature: evaluate(context, proposed_action, as_of)."""
    return evaluate(dataclasses.replace(ctx, proposed_action=action, as_of=as_of), overlay)
