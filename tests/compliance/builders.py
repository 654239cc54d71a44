"""Typed builders for compliance scenarios (synthetic people only)."""

from __future__ import annotations

import copy
import json
from typing import Any

from carecollect.compliance.scenario import Context, parse_context


def base_input() -> dict[str, Any]:
    """A plain, allowed manual call from a first-party dental practice in New York State."""
    return {
        "as_of": "2026-03-10T10:00:00-04:00",
        "policy_profile": "strict",
        "creditor": {
            "type": "first_party", "entity_kind": "dental_practice",
            "display_name": "Maple Street Dental", "name_indicates_debt_collection": False,
            "hipaa_role": "covered_entity", "baa_in_place": False,
            "provider_license_state": "NY",
        },
        "debtor": {
            "person_id": "P-TEST-1", "state": "NY", "zip": "12207", "city_is_nyc": False,
            "mailing_tz": "America/New_York", "other_known_tz": [], "deceased": False,
            "minor": False, "designated_inconvenient": [], "confidential_comm_request": None,
            "patient_email_risk_acknowledged": False, "family_payment_involvement": [],
        },
        "debt": {
            "debt_ids": ["D1"], "kind": "dental", "balance_cents": 84_500,
            "first_post_discharge_statement_date": None, "placed_with_agency_at": None,
            "sol_expired": False, "first_delinquency_date": "2025-01-15", "nsa": None,
        },
        "contact_points": [
            {"id": "cp_cell", "type": "phone", "value": "+15185550101",
             "line_type": "wireless", "area_code_tz": "America/New_York", "owner": "debtor",
             "employer_provided": False, "source": "intake_form",
             "rnd_check": {"date": "2026-03-01", "result": "no"}},
            {"id": "cp_home", "type": "phone", "value": "+15185550102",
             "line_type": "landline", "area_code_tz": "America/New_York", "owner": "debtor",
             "employer_provided": False, "source": "intake_form", "rnd_check": None},
            {"id": "cp_email", "type": "email", "value": "pat.test@example.org",
             "line_type": None, "area_code_tz": None, "owner": "debtor",
             "employer_provided": False, "source": "portal", "rnd_check": None},
            {"id": "cp_mail", "type": "postal", "value": "1 Test Way, Albany NY 12207",
             "line_type": None, "area_code_tz": None, "owner": "debtor",
             "employer_provided": False, "source": "intake_form", "rnd_check": None},
        ],
        "consents": [
            {"contact_point": "cp_cell", "kind": "tcpa_pec",
             "granted_at": "2026-02-20T09:00:00-05:00", "given_to": "creditor",
             "method": "intake_form"},
            {"contact_point": "cp_email", "kind": "email_use",
             "granted_at": "2026-02-20T09:00:00-05:00", "given_to": "creditor",
             "method": "portal"},
        ],
        "revocations": [],
        "contact_history": [],
        "flags": {
            "attorney_represented": None, "disputed": None, "bankruptcy": None,
            "cease_requested": None, "validation": None, "fap": None,
            "credit_reported": False,
        },
        "proposed_action": {
            "channel": "call", "contact_point": "cp_cell",
            "time": "2026-03-10T10:00:00-04:00", "dialer": "manual", "recipient": "debtor",
            "debt_ids": ["D1"],
            "content": {
                "template": "balance_call", "subject": None,
                "body_summary": "live call about the balance",
                "contains": ["practice_name_neutral", "balance_amount"], "url": None,
                "includes_opt_out": False, "includes_debt_collector_disclosure": False,
                "marketing": False, "encrypted_or_portal": False,
            },
        },
    }


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `patch` into a copy of `base` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def at(when: str) -> dict[str, Any]:
    """Patch moving both as_of and the proposed time."""
    return {"as_of": when, "proposed_action": {"time": when}}


def sms(**content: Any) -> dict[str, Any]:
    c = {"template": "statement_ready_sms", "contains": ["practice_name_neutral",
                                                          "payment_link_opaque"],
         "includes_opt_out": True, "body_summary": "you have a new statement"}
    c.update(content)
    return {"proposed_action": {"channel": "sms", "contact_point": "cp_cell", "dialer": None,
                                "content": c}}


def email(**content: Any) -> dict[str, Any]:
    c = {"template": "statement_ready_email", "subject": "Your statement is ready",
         "contains": ["practice_name_neutral", "balance_amount", "payment_link_opaque"],
         "includes_opt_out": True, "body_summary": "statement"}
    c.update(content)
    return {"proposed_action": {"channel": "email", "contact_point": "cp_email",
                                "dialer": None, "content": c}}


def call(when: str, outcome: str = "no_answer", *, cp: str = "cp_cell",
         direction: str = "outbound", person: str = "debtor", dialer: str = "manual",
         debt_ids: tuple[str, ...] = ("D1",), channel: str = "call",
         text: str | None = None) -> dict[str, Any]:
    return {"text": text, "at": when, "channel": channel, "direction": direction,
            "contact_point": cp, "person": person, "debt_ids": list(debt_ids),
            "dialer": dialer if channel in ("call", "voicemail") else None,
            "outcome": outcome}


def context(patch: dict[str, Any] | None = None) -> Context:
    return parse_context(merge(base_input(), patch or {}))


def scenario_line(case_id: str, patch: dict[str, Any], expected: str,
                  reasons: list[str], modification: str | None, rule_ids: list[str],
                  description: str, citation: str) -> str:
    return json.dumps({
        "id": case_id, "rule_ids": rule_ids, "description": description,
        "input": merge(base_input(), patch), "expected": expected,
        "expected_reasons": reasons, "expected_modification": modification,
        "citation": citation,
    }, sort_keys=False)
