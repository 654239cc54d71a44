"""The documented vocabulary of audit actions.

Actions are dotted verbs, `<area>.<verb>` (more segments allowed). The table below lists
the actions known today with the FHIR R4 AuditEvent action code each maps to (C create,
R read/view/search, U update, D delete, E execute). Domains add their actions here when
they start recording them; an action that is not listed is still accepted if it is well
formed, and its FHIR code is derived from its last segment (see `fhir_action_code`).
"""

from __future__ import annotations

import re

ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# HIPAA 45 CFR 164.312(b) (audit controls) and 164.528 (accounting of disclosures):
# reads of PHI are recorded as well as changes.
ACTIONS: dict[str, tuple[str, str]] = {
    # action: (FHIR action code, description)
    "patient.create": ("C", "a patient or guarantor record was created"),
    "patient.read": ("R", "a patient's detail view or PHI fields were read"),
    "patient.search": ("R", "a search returned patient records"),
    "patient.update": ("U", "patient fields were changed (field names in details)"),
    "patient.delete": ("D", "a patient record was deleted"),
    "patient.reveal": ("R", "a masked PHI field was revealed to staff"),
    "patient.export": ("R", "patient records were exported"),
    "staff.login": ("E", "a staff sign-in attempt"),
    "staff.logout": ("E", "a staff sign-out"),
    "staff.break_glass": ("E", "emergency access outside the normal role"),
    "api_key.create": ("C", "an API key was created (scopes in details)"),
    "api_key.revoke": ("U", "an API key was revoked"),
    "audit.search": ("R", "the audit trail was searched"),
    "baa.change": ("U", "a business associate or its BAA status was recorded or changed"),
    "insight.drilldown": ("R", "accounts behind an aggregate figure were listed"),
    "organization.overlay_update": ("U", "the organization's compliance overlay changed"),
    "organization.template_save": ("U", "an organization template override was saved"),
    "organization.template_revert": ("U", "an organization template reverted to shipped"),
    "outreach.dry_run": ("E", "a campaign dry run was simulated (nothing sent)"),
    "outreach.reconcile": ("U", "an attempt in an uncertain state was reconciled"),
    "outreach.unsubscribe": ("U", "a one-click e-mail unsubscribe was received"),
    "payment.checkout": ("C", "a hosted checkout session was started for a payment"),
    "plan.complete": ("U", "a payment plan was paid in full"),
    "plan.installment_missed": ("U", "a plan installment was missed"),
    "plan.installment_paid": ("U", "a plan installment was paid"),
    "portal.download": ("R", "the patient downloaded a receipt or plan agreement"),
    "portal.link_issue": ("C", "a portal link was issued (only its hash is stored)"),
    "portal.link_revoke": ("U", "a portal link was revoked"),
    "portal.link_unknown": ("E", "an unknown, expired or revoked portal link was opened"),
    "portal.logout": ("E", "the patient signed out of the portal"),
    "staff.mfa_enroll": ("U", "a staff user enrolled a TOTP authenticator"),
    "user.create": ("C", "a staff user was created"),
    "user.update": ("U", "a staff user's role or status changed"),
    "portal.login": ("E", "a patient portal identity verification attempt"),
    "portal.view": ("R", "the patient viewed their bill in the portal"),
    "portal.dispute": ("C", "the patient disputed a charge in the portal"),
    "portal.hardship": ("C", "the patient asked for financial help in the portal"),
    "consent.change": ("U", "consent granted, revoked or changed"),
    "outreach.decision": ("E", "the planner decided to send, block or re-time a message"),
    "message.send": ("E", "a message was handed to a channel provider"),
    "payment.post": ("C", "a payment was posted to the ledger"),
    "payment.refund": ("C", "a refund was issued"),
    "config.change": ("U", "a configuration or policy was changed"),
    "key.rotate": ("E", "data keys were rotated"),
    "import.run": ("C", "an import created or updated records"),
    "import.queue": ("C", "a file was uploaded through the API and queued for import"),
    "organization.create": ("C", "an organization (tenant) was created with its data keys"),
    "account.create": ("C", "a patient account was opened"),
    "ledger.post": ("C", "a ledger entry was posted"),
    "flag.raise": ("C", "a flag (dispute, bankruptcy, cease, ...) was raised"),
    "flag.review": ("U", "a person reviewed a flag; it stays in force"),
    "flag.clear": ("U", "a person reviewed a flag and ended it"),
    "call_task.check": ("R", "a manual call was re-checked against the rules before dialing"),
    "call_task.outcome": ("U", "the outcome of a manual call was logged"),
    "contact_point.create": ("C", "a phone, e-mail or postal address was added"),
    "contact.record": ("C", "an outbound attempt or inbound contact was recorded"),
    "key.shred": ("D", "an organization's data keys were destroyed (crypto-shredding)"),
    "consent.export": ("R", "a patient's consent evidence was exported"),
    "outreach.plan": ("E", "the planner created outreach attempts"),
    "outreach.enroll": ("U", "an account was enrolled in a campaign"),
    "outreach.exclude": ("U", "an account was excluded from outreach"),
    "outreach.exclude_lift": ("U", "an outreach exclusion was lifted"),
    "outreach.enrollment_change": ("U", "a campaign enrollment changed (pause, resume, stop)"),
    "payment.chargeback": ("C", "a chargeback reversed a payment"),
    "payment.attempt": ("E", "a charge was attempted at the processor"),
    "payment_method.create": ("C", "a payment method was saved (processor token only)"),
    "payment_method.detach": ("D", "a retired payment method was detached at the processor"),
    "plan.create": ("C", "a payment plan was created"),
    "plan.cancel": ("U", "a payment plan was cancelled by staff or an API client"),
    "plan.charge": ("E", "an installment was charged"),
    "plan.default": ("U", "a payment plan defaulted"),
    "plan.pause": ("U", "a payment plan was paused for hardship"),
    "plan.resume": ("U", "a paused payment plan resumed"),
    "plan.payoff": ("U", "a payment plan was paid off early"),
    "plan.replan": ("U", "a payment plan was re-planned after new charges"),
    "plan.autopay_setup": ("C", "an autopay enrollment was started on the processor's page"),
    "plan.autopay_on": ("U", "autopay was turned on or its card replaced"),
    "plan.autopay_off": ("U", "autopay was turned off by the patient"),
    "audit.export": ("R", "the audit trail was exported"),
    "audit.verify": ("E", "the audit trail was verified"),
    "audit.access_log": ("R", "a patient's access log was viewed"),
    "insight.export": ("R", "an aggregate insights report was exported (CSV or PDF)"),
    "insight.report_email": ("E", "the monthly insights report was e-mailed to a staff user"),
    "webhook_endpoint.create": ("C", "an outbound webhook endpoint was registered"),
    "webhook_endpoint.update": ("U", "an outbound webhook endpoint was paused or resumed"),
    "webhook_endpoint.delete": ("D", "an outbound webhook endpoint was deleted"),
    "staff_user.report_preference": ("U", "a user turned the monthly report e-mail on or off"),
    "webhook_endpoint.rotate_secret": ("U", "an outbound webhook endpoint's secret was rotated"),
    "webhook_delivery.redeliver": ("U", "a webhook delivery was queued to be sent again"),
    "integration_event.purge": ("D", "settled integration events past retention were deleted"),
}

_VERB_CODES = {
    "create": "C",
    "import": "C",
    "post": "C",
    "read": "R",
    "view": "R",
    "search": "R",
    "list": "R",
    "export": "R",
    "reveal": "R",
    "update": "U",
    "change": "U",
    "revoke": "U",
    "delete": "D",
    "remove": "D",
}


def is_valid_action(action: str) -> bool:
    # fullmatch: `$` alone would also accept a trailing newline.
    return len(action) <= 64 and ACTION_PATTERN.fullmatch(action) is not None


def fhir_action_code(action: str) -> str:
    """FHIR R4 AuditEvent.action code (C, R, U, D or E) for an action name."""
    known = ACTIONS.get(action)
    if known is not None:
        return known[0]
    return _VERB_CODES.get(action.rsplit(".", 1)[-1], "E")
