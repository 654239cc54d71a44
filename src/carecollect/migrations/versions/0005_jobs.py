"""Job queue and outbox: `job`, `outreach_attempt`, `contact_state`, `call_task` and
`review_item` (ARCHITECTURE.md §6); row-level security on PostgreSQL.

Revision ID: 0005_jobs
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from carecollect.migrations.security import enable_tenant_isolation, grant_all_tables

revision = "0005_jobs"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT_TABLES = ["outreach_attempt", "contact_state", "call_task", "review_item"]


def upgrade() -> None:
    op.create_table('job',
    sa.Column('organization_id', sa.Uuid(), nullable=True),
    sa.Column('queue', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_by', sa.String(length=64), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('unique_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_job_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('unique_key', name=op.f('uq_job_unique_key'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_claim', ['queue', 'priority', 'scheduled_at'], unique=False, postgresql_where=sa.text("state = 'available'"), sqlite_where=sa.text("state = 'available'"))
        batch_op.create_index('ix_job_lease', ['leased_until'], unique=False, postgresql_where=sa.text("state = 'running'"), sqlite_where=sa.text("state = 'running'"))
        batch_op.create_index(batch_op.f('ix_job_organization_id'), ['organization_id'], unique=False)

    op.create_table('contact_state',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('last_outbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outbound_count', sa.Integer(), nullable=False),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_confirmation_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_contact_state_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_contact_state_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guarantor_id', name=op.f('pk_contact_state')),
    sa.UniqueConstraint('organization_id', 'guarantor_id', name=op.f('uq_contact_state_organization_id_guarantor_id'))
    )
    with op.batch_alter_table('contact_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_state_organization_id'), ['organization_id'], unique=False)

    op.create_table('outreach_attempt',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=True),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('template_key', sa.String(length=80), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('cadence_key', sa.String(length=80), nullable=True),
    sa.Column('step_key', sa.String(length=80), nullable=True),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contact_event_id', sa.Uuid(), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_message_id', sa.String(length=120), nullable=True),
    sa.Column('delivery_status', sa.String(length=24), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('next_allowed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('send_count', sa.Integer(), nullable=False),
    sa.Column('reconcile_count', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sending_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_outreach_attempt_account_id_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_outreach_attempt_contact_point_id_contact_point'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_outreach_attempt_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_outreach_attempt_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_attempt')),
    sa.UniqueConstraint('organization_id', 'idempotency_key', name=op.f('uq_outreach_attempt_organization_id_idempotency_key'))
    )
    with op.batch_alter_table('outreach_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_attempt_org_guarantor', ['organization_id', 'guarantor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_attempt_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_outreach_attempt_provider_id', ['provider', 'provider_message_id'], unique=False)
        batch_op.create_index('ix_outreach_attempt_state', ['state', 'updated_at'], unique=False)

    op.create_table('call_task',
    sa.Column('attempt_id', sa.Uuid(), nullable=False),
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('script_key', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('contact_event_id', sa.Uuid(), nullable=True),
    sa.Column('assigned_to', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['outreach_attempt.id'], name=op.f('fk_call_task_attempt_id_outreach_attempt'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_call_task_contact_point_id_contact_point'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_call_task_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_call_task_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_task')),
    sa.UniqueConstraint('attempt_id', name=op.f('uq_call_task_attempt_id'))
    )
    with op.batch_alter_table('call_task', schema=None) as batch_op:
        batch_op.create_index('ix_call_task_org_state', ['organization_id', 'state', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_task_organization_id'), ['organization_id'], unique=False)

    op.create_table('review_item',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('flag_id', sa.Uuid(), nullable=True),
    sa.Column('contact_event_id', sa.Uuid(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['contact_event_id'], ['contact_event.id'], name=op.f('fk_review_item_contact_event_id_contact_event'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['flag_id'], ['flag.id'], name=op.f('fk_review_item_flag_id_flag'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_review_item_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_review_item_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_item'))
    )
    with op.batch_alter_table('review_item', schema=None) as batch_op:
        batch_op.create_index('ix_review_item_org_state', ['organization_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_item_organization_id'), ['organization_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgres_security(context.config.attributes.get("app_role", "carecollect_app"))


def _postgres_security(role: str) -> None:
    """RLS exactly as 0001_foundation for the tenant tables. `job` has a nullable
    organization (periodic jobs belong to none): tenant sessions see and enqueue only
    their organization's jobs, the claimer and scheduler run as the owner."""
    grant_all_tables(role)
    enable_tenant_isolation([*TENANT_TABLES, "job"])


def downgrade() -> None:
    for table in ["review_item", "call_task", "outreach_attempt", "contact_state", "job"]:
        op.drop_table(table)
