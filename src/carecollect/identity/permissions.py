"""The permission matrix: every role and every API scope, in one place.

HIPAA 45 CFR 164.312(a)(1) (access control) and 164.502(b) (minimum necessary): each role
gets only what its work needs. Collectors see PHI masked until they reveal a field, and
every reveal is audited. API keys carry scopes, which are permission names; a key can only
hold the permissions listed in `API_GRANTABLE`.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    DASHBOARD_READ = "dashboard.read"
    ORG_READ = "organization.read"
    ORG_MANAGE = "organization.manage"
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    API_KEY_MANAGE = "api_key.manage"
    BAA_READ = "baa.read"
    BAA_MANAGE = "baa.manage"
    PATIENT_SEARCH = "patient.search"
    PATIENT_READ = "patient.read"  # masked view of PHI
    PATIENT_READ_UNMASKED = "patient.read_unmasked"  # full view without a reveal step
    PATIENT_REVEAL = "patient.reveal"  # unmask one field, audited
    PATIENT_WRITE = "patient.write"
    ACCOUNT_READ = "account.read"
    ACCOUNT_WRITE = "account.write"
    CONSENT_READ = "consent.read"
    CONSENT_WRITE = "consent.write"
    FLAG_READ = "flag.read"
    FLAG_WRITE = "flag.write"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    CONSENT_EXPORT = "consent.export"
    BREAK_GLASS = "break_glass.use"
    CAMPAIGN_READ = "campaign.read"
    CAMPAIGN_MANAGE = "campaign.manage"
    INSIGHTS_READ = "insights.read"  # aggregate reports, no PHI
    INSIGHTS_EXPORT = "insights.export"  # CSV/PDF exports of aggregate reports
    WEBHOOK_MANAGE = "webhook.manage"  # outbound webhook endpoints
    PAYMENT_READ = "payment.read"
    PAYMENT_WRITE = "payment.write"  # staff-posted payments, refunds, plans
    CALL_WORK = "call.work"  # re-check and log manual calls from the work list


class Role(StrEnum):
    OWNER = "owner"
    BILLING_MANAGER = "billing_manager"
    COLLECTOR = "collector"
    COMPLIANCE_OFFICER = "compliance_officer"
    AUDITOR = "auditor"


ROLE_LABELS: dict[Role, str] = {
    Role.OWNER: "Owner / admin",
    Role.BILLING_MANAGER: "Billing manager",
    Role.COLLECTOR: "Collector",
    Role.COMPLIANCE_OFFICER: "Compliance officer",
    Role.AUDITOR: "Read-only auditor",
}

P = Permission
_PHI_WORK = frozenset(
    {
        P.DASHBOARD_READ,
        P.ORG_READ,
        P.PATIENT_SEARCH,
        P.PATIENT_READ,
        P.ACCOUNT_READ,
        P.CONSENT_READ,
        P.FLAG_READ,
        P.CAMPAIGN_READ,
        P.INSIGHTS_READ,
        P.PAYMENT_READ,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.BILLING_MANAGER: _PHI_WORK
    | {
        P.PATIENT_READ_UNMASKED,
        P.PATIENT_REVEAL,
        P.PATIENT_WRITE,
        P.ACCOUNT_WRITE,
        P.CONSENT_WRITE,
        P.FLAG_WRITE,
        P.USER_READ,
        P.BAA_READ,
        P.BREAK_GLASS,
        P.CAMPAIGN_MANAGE,
        P.INSIGHTS_EXPORT,
        P.PAYMENT_WRITE,
        P.CALL_WORK,
    },
    # Collectors work accounts all day: masked by default (minimum necessary), reveal on
    # demand; they must be able to record an opt-out or a dispute the moment they hear it
    # (TCPA revocation "by any reasonable means", FDCPA 1692g(b) disputes).
    Role.COLLECTOR: _PHI_WORK
    | {P.PATIENT_REVEAL, P.CONSENT_WRITE, P.FLAG_WRITE, P.BREAK_GLASS, P.CALL_WORK},
    Role.COMPLIANCE_OFFICER: _PHI_WORK
    | {
        P.PATIENT_REVEAL,
        P.CONSENT_WRITE,
        P.CONSENT_EXPORT,
        P.FLAG_WRITE,
        P.AUDIT_READ,
        P.AUDIT_VERIFY,
        P.BAA_READ,
        P.BAA_MANAGE,
        P.USER_READ,
        P.BREAK_GLASS,
        P.INSIGHTS_EXPORT,
    },
    # The auditor reviews controls, not patients: no PHI unless they break the glass.
    Role.AUDITOR: frozenset(
        {P.DASHBOARD_READ, P.ORG_READ, P.USER_READ, P.BAA_READ, P.AUDIT_READ, P.AUDIT_VERIFY,
         P.BREAK_GLASS, P.INSIGHTS_READ, P.CAMPAIGN_READ}
    ),
}

# Break-glass adds read access to PHI (unmasked) for a limited time; it never adds write
# or administrative permissions.
BREAK_GLASS_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        P.PATIENT_SEARCH,
        P.PATIENT_READ,
        P.PATIENT_READ_UNMASKED,
        P.ACCOUNT_READ,
        P.CONSENT_READ,
        P.FLAG_READ,
    }
)

# Scopes an API key may hold. Key and user management, reveal (a staff-screen concept) and
# break-glass stay with people.
API_GRANTABLE: frozenset[Permission] = frozenset(Permission) - {
    P.USER_MANAGE,
    P.API_KEY_MANAGE,
    P.PATIENT_REVEAL,
    P.BREAK_GLASS,
    P.DASHBOARD_READ,
}


def permissions_for(role: str) -> frozenset[Permission]:
    """The permissions of a role name; an unknown role has none (fail closed)."""
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


def parse_scopes(scopes: list[str]) -> frozenset[Permission]:
    """Validate API key scopes; unknown or non-grantable scopes raise ValueError."""
    result: set[Permission] = set()
    for scope in scopes:
        try:
            permission = Permission(scope)
        except ValueError:
            raise ValueError(f"unknown scope {scope!r}") from None
        if permission not in API_GRANTABLE:
            raise ValueError(f"scope {scope!r} cannot be granted to an API key")
        result.add(permission)
    return frozenset(result)


def matrix() -> list[tuple[Permission, dict[Role, bool]]]:
    """The matrix as rows (for docs/WEB.md and the users-and-roles screen)."""
    return [(p, {r: p in ROLE_PERMISSIONS[r] for r in Role}) for p in Permission]
