"""Job handlers of the insights domain: the organization-wide monthly report by e-mail.

* `insight.monthly_sweep` runs hourly once `install_periodic()` has run. During the first
  three days of a month in each organization's own time zone (so a practice in Honolulu
  does not get October's report while it is still October 31st there) it enqueues one
  `insight.monthly_report` job per recipient for that organization's previous calendar
  month. Each job has
  the unique key `insight.monthly:<organization>:<YYYY-MM>:<user>`, so the daily repeats
  (kept as a catch-up for a worker that was down on the 1st) never send twice. Without an
  e-mail channel in the worker's resources it enqueues nothing.
* `insight.monthly_report` builds the headline reports (`build_dashboard`) of that month
  in the organization's zone, renders them as one PDF, and sends it through the e-mail
  channel (`channel/email.py`) with a short text/HTML summary; then it records
  `insight.report_email` (month, report count, recipient user id).

Recipients: the organization's active staff users whose role holds
`Permission.INSIGHTS_EXPORT` (the same people who may download the PDF in the staff
app: owner, billing manager, compliance officer with the default matrix) and who have not
turned it off on the insights page (`staff_user.monthly_report_opt_out`; the e-mail's
List-Unsubscribe link leads there). Someone stops receiving it when they opt out, their
role changes or their account is disabled; the recipient is re-checked when the job runs.

Aggregates only: the PDF, the subject and the body carry report titles, counts, rates and
dollar totals, never a patient's name, contact or account (RULES.md section 8; there is
no PHI, so no BAA is needed for the relay, and nothing PHI-bearing lands in job args).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from carecollect.audit import Actor, Subject, record
from carecollect.channel.base import Ambiguous, ChannelError, NotSent, OutboundMessage
from carecollect.identity.models import StaffUser
from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.insight import export as insight_export
from carecollect.insight import service as insight_service
from carecollect.insight.jobs import install_rollup_periodic
from carecollect.insight.schemas import Report, ReportFilters
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs import (
    ClaimedJob,
    JobContext,
    PeriodicSpec,
    RetryableError,
    TerminalError,
    enqueue_many,
    registry,
    task,
)
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.logging import get_logger
from carecollect.outreach.dispatch import DispatchResources, resources_of
from carecollect.tenant.models import Organization

SWEEP_JOB = "insight.monthly_sweep"
REPORT_JOB = "insight.monthly_report"
# Hourly, so each organization is reached early on the 1st of its own zone's month.
DAILY = PeriodicSpec(name="insight_monthly_report", kind=SWEEP_JOB, every=timedelta(hours=1),
                     offset=timedelta(minutes=7), queue="default")
# The sweep enqueues last month's report only on these days of the organization's month.
SEND_DAYS = 3
ACTOR = Actor.system("insight.monthly_report")
log = get_logger(__name__)


def install_periodic(target: TaskRegistry = registry) -> None:
    """Schedule the daily sweep that sends last month's report on the 1st (to 3rd), and
    the insights rollup refresh (`insight.jobs`)."""
    target.add_periodic(DAILY)
    install_rollup_periodic(target)


def recipient_roles() -> list[str]:
    return sorted(r.value for r in Role if Permission.INSIGHTS_EXPORT in ROLE_PERMISSIONS[r])


def local_date(now: datetime, zone: str) -> date:
    """The calendar day at `now` in the organization's zone (UTC if the zone is unknown)."""
    try:
        return now.astimezone(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(UTC).date()


def previous_month(day: date) -> date:
    """The first day of the month before `day`'s month."""
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_filters(month: date) -> ReportFilters:
    following = (month + timedelta(days=32)).replace(day=1)
    return ReportFilters(period_start=month, period_end=following)


def unique_key(organization_id: uuid.UUID, month: date, user_id: uuid.UUID) -> str:
    return f"insight.monthly:{organization_id}:{month.strftime('%Y-%m')}:{user_id}"


@task(SWEEP_JOB, queue="default", max_attempts=3)
def monthly_sweep(ctx: JobContext, job: ClaimedJob) -> None:
    now = ctx.clock()
    force = bool(job.args.get("force"))
    outreach = ctx.resources.get("outreach")
    if not isinstance(outreach, DispatchResources) or "email" not in outreach.channels:
        # Nothing to send through: no job is created (it would only be discarded), and a
        # channel configured later in the first days still gets the month's report out.
        log.info("insight.monthly_sweep.no_email_channel")
        return
    with ctx.db.system_session() as session:
        query = select(Organization.id, Organization.timezone).where(
            Organization.state == "active")
        if job.organization_id is not None:
            query = query.where(Organization.id == job.organization_id)
        organizations = [(row[0], row[1]) for row in session.execute(query)]
    for organization_id, zone in organizations:
        today = local_date(now, zone)
        if today.day > SEND_DAYS and not force:
            continue
        month = previous_month(today)
        with ctx.db.tenant_session(organization_id) as session:
            users = list(session.scalars(
                select(StaffUser.id)
                .where(StaffUser.organization_id == organization_id,
                       StaffUser.state == "active",
                       StaffUser.monthly_report_opt_out.is_(False),
                       StaffUser.role.in_(recipient_roles()))
                .order_by(StaffUser.id)
            ))
            created = enqueue_many(session, [
                {"kind": REPORT_JOB, "queue": "default", "organization_id": organization_id,
                 "args": {"month": month.isoformat(), "user_id": str(user_id)},
                 "unique_key": unique_key(organization_id, month, user_id),
                 "scheduled_at": now, "max_attempts": 5}
                for user_id in users
            ])
        log.info("insight.monthly_sweep", organization_id=str(organization_id),
                 recipient_count=len(users), enqueued_count=len(created))


def summary_bodies(
    organization_name: str, month: date, reports: list[Report], public_base_url: str
) -> tuple[str, str]:
    """Plain-text and HTML bodies: the month, each report's title and row count."""
    label = month.strftime("%B %Y")
    link = f"{public_base_url.rstrip('/')}/app/insights"
    lines = [f"{organization_name}: collections report for {label}.", "",
             "The attached PDF holds these reports (aggregates only):"]
    lines += [f"- {r.title} ({len(r.rows)} rows)" for r in reports]
    lines += ["", f"Live dashboards: {link}",
              "You receive this because your role may export insights reports.",
              f"To stop it, turn it off on the insights page: {link}#monthly-report"]
    items = "".join(f"<li>{escape(r.title)} ({len(r.rows)} rows)</li>" for r in reports)
    html = (f"<p>{escape(organization_name)}: collections report for {escape(label)}.</p>"
            f"<p>The attached PDF holds these reports (aggregates only):</p><ul>{items}</ul>"
            f'<p>Live dashboards: <a href="{escape(link)}">{escape(link)}</a></p>'
            "<p>You receive this because your role may export insights reports. To stop it,"
            f' turn it off on <a href="{escape(link)}#monthly-report">the insights page</a>.</p>')
    return "\n".join(lines) + "\n", html


@task(REPORT_JOB, queue="default", max_attempts=5)
def monthly_report(ctx: JobContext, job: ClaimedJob) -> None:
    organization_id = job.organization_id
    if organization_id is None:
        raise TerminalError("organization_missing")
    try:
        month = date.fromisoformat(str(job.args["month"]))
        user_id = uuid.UUID(str(job.args["user_id"]))
    except (KeyError, ValueError):
        raise TerminalError("bad_arguments") from None
    resources = resources_of(ctx)
    provider = resources.channels.get("email")
    if provider is None:
        raise TerminalError("channel_not_configured")
    now: datetime = ctx.clock()
    filters = month_filters(month)
    with ctx.db.tenant_session(organization_id) as session:
        user = session.get(StaffUser, user_id)
        org = session.get(Organization, organization_id)
        if org is None or org.state != "active":
            return
        if (user is None or user.state != "active" or user.role not in recipient_roles()
                or user.monthly_report_opt_out):
            log.info("insight.monthly_report.skipped", organization_id=str(organization_id))
            return
        reports = insight_service.build_dashboard(
            session, organization_id=organization_id, filters=filters, now=now
        )
        filter_lines = insight_export.describe_filters(session, filters)
        recipient = user.email
        from_name = org.billing_display_name
    title = f"{from_name}: monthly report, {month.strftime('%B %Y')}"
    pdf = insight_export.reports_pdf(reports, title=title, filter_lines=filter_lines,
                                     generated_at=now)
    text_body, html_body = summary_bodies(from_name, month, reports,
                                          resources.settings.public_base_url)
    key = unique_key(organization_id, month, user_id)
    message = OutboundMessage(
        attempt_id=uuid7(),
        organization_id=organization_id,
        idempotency_key=key,
        channel="email",
        to=recipient,
        from_name=from_name,
        subject=f"Monthly collections report, {month.strftime('%B %Y')}",
        text_body=text_body,
        html_body=html_body,
        # The e-mail channel requires an opt-out link: the insights page's "Monthly report
        # by e-mail" section, where the recipient turns it off.
        list_unsubscribe_url=f"{resources.settings.public_base_url.rstrip('/')}"
                             "/app/insights#monthly-report",
        extra={"attachments": [(f"insights-{month.strftime('%Y-%m')}.pdf",
                                "application/pdf", pdf)]},
    )
    try:
        provider.send(message)
    except Ambiguous as exc:
        # The relay may have it: never re-send blindly (a duplicate report is harmless but
        # the channel contract is the same for every message).
        raise TerminalError(exc.code) from None
    except NotSent as exc:
        if exc.retryable:
            raise RetryableError(exc.code) from None
        raise TerminalError(exc.code) from None
    except ChannelError as exc:
        raise TerminalError(exc.code) from None
    with ctx.db.tenant_session(organization_id) as session:
        record(
            session,
            actor=ACTOR,
            action="insight.report_email",
            subject=Subject("insight_report", None, organization_id=organization_id),
            details={"month": month.strftime("%Y-%m"), "reports": len(reports),
                     "recipient_user_id": str(user_id), "pdf_bytes": len(pdf)},
        )
