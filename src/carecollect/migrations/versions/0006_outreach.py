"""Outreach cadences (campaigns, steps, enrollments, exclusions, behaviour signals) and the
consent-ledger additions (medium opt-outs, confidential-communication requests, designated
inconvenient times); row-level security on PostgreSQL like 0001_foundation.

Revision ID: 0006_outreach
Revises: 0005_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from carecollect.migrations.security import enable_tenant_isolation, grant_all_tables

revision = "0006_outreach"
down_revision = "0005_jobs"
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "campaign", "campaign_step", "campaign_enrollment", "outreach_exclusion",
    "outreach_signal", "medium_opt_out", "confidential_comm_request",
    "inconvenient_designation",
]


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('min_balance_cents', sa.BigInteger(), nullable=True),
    sa.Column('max_balance_cents', sa.BigInteger(), nullable=True),
    sa.Column('min_age_days', sa.Integer(), nullable=True),
    sa.Column('max_age_days', sa.Integer(), nullable=True),
    sa.Column('plan_status', sa.String(length=16), nullable=False),
    sa.Column('holdout_basis_points', sa.Integer(), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('stop_on', sa.JSON(), nullable=False),
    sa.Column('pause_on', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_campaign_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign')),
    sa.UniqueConstraint('organization_id', 'key', name=op.f('uq_campaign_organization_id_key'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_organization_id'), ['organization_id'], unique=False)

    op.create_table('campaign_step',
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('wait_days', sa.Integer(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('send_hour', sa.Integer(), nullable=False),
    sa.Column('condition', sa.JSON(), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_step_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_campaign_step_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_step')),
    sa.UniqueConstraint('campaign_id', 'position', name=op.f('uq_campaign_step_campaign_id_position'))
    )
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_step_organization_id'), ['organization_id'], unique=False)

    op.create_table('confidential_comm_request',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('allowed_channels', sa.JSON(), nullable=False),
    sa.Column('allowed_contact_point_ids', sa.JSON(), nullable=False),
    sa.Column('instruction', sa.LargeBinary(), nullable=True),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('captured_by', sa.String(length=80), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_confidential_comm_request_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_confidential_comm_request_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confidential_comm_request'))
    )
    with op.batch_alter_table('confidential_comm_request', schema=None) as batch_op:
        batch_op.create_index('ix_confidential_comm_request_org_guarantor', ['organization_id', 'guarantor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_confidential_comm_request_organization_id'), ['organization_id'], unique=False)

    op.create_table('inconvenient_designation',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('designated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('captured_by', sa.String(length=80), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_inconvenient_designation_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_inconvenient_designation_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inconvenient_designation'))
    )
    with op.batch_alter_table('inconvenient_designation', schema=None) as batch_op:
        batch_op.create_index('ix_inconvenient_designation_org_guarantor', ['organization_id', 'guarantor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inconvenient_designation_organization_id'), ['organization_id'], unique=False)

    op.create_table('campaign_enrollment',
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('cohort', sa.String(length=16), nullable=False),
    sa.Column('variant', sa.String(length=32), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_step', sa.Integer(), nullable=False),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=64), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_planned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_campaign_enrollment_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_enrollment_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_campaign_enrollment_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_campaign_enrollment_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_enrollment')),
    sa.UniqueConstraint('campaign_id', 'account_id', name=op.f('uq_campaign_enrollment_campaign_id_account_id'))
    )
    with op.batch_alter_table('campaign_enrollment', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_enrollment_due', ['organization_id', 'status', 'next_due_at', 'guarantor_id', 'account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_enrollment_organization_id'), ['organization_id'], unique=False)

    op.create_table('medium_opt_out',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('medium', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('captured_by', sa.String(length=80), nullable=True),
    sa.Column('text', sa.LargeBinary(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_medium_opt_out_contact_point_id_contact_point'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_medium_opt_out_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_medium_opt_out_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medium_opt_out'))
    )
    with op.batch_alter_table('medium_opt_out', schema=None) as batch_op:
        batch_op.create_index('ix_medium_opt_out_org_guarantor', ['organization_id', 'guarantor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_medium_opt_out_organization_id'), ['organization_id'], unique=False)

    op.create_table('outreach_exclusion',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('excluded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_outreach_exclusion_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_outreach_exclusion_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_outreach_exclusion_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_exclusion'))
    )
    with op.batch_alter_table('outreach_exclusion', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_exclusion_org_account', ['organization_id', 'account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_exclusion_organization_id'), ['organization_id'], unique=False)

    op.create_table('outreach_signal',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('attempt_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_outreach_signal_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_outreach_signal_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_signal'))
    )
    with op.batch_alter_table('outreach_signal', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_signal_org_account', ['organization_id', 'account_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_signal_organization_id'), ['organization_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgres_security(context.config.attributes.get("app_role", "carecollect_app"))


def _postgres_security(role: str) -> None:
    """RLS exactly as 0001_foundation: ENABLE + FORCE, tenant_isolation for the application
    role, owner_access for the owner (system sessions: the nightly planner's scheduler)."""
    grant_all_tables(role)
    enable_tenant_isolation(TENANT_TABLES)


def downgrade() -> None:
    with op.batch_alter_table('outreach_signal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_signal_organization_id'))
        batch_op.drop_index('ix_outreach_signal_org_account')

    op.drop_table('outreach_signal')
    with op.batch_alter_table('outreach_exclusion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_exclusion_organization_id'))
        batch_op.drop_index('ix_outreach_exclusion_org_account')

    op.drop_table('outreach_exclusion')
    with op.batch_alter_table('medium_opt_out', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medium_opt_out_organization_id'))
        batch_op.drop_index('ix_medium_opt_out_org_guarantor')

    op.drop_table('medium_opt_out')
    with op.batch_alter_table('campaign_enrollment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_enrollment_organization_id'))
        batch_op.drop_index('ix_campaign_enrollment_due')

    op.drop_table('campaign_enrollment')
    with op.batch_alter_table('inconvenient_designation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inconvenient_designation_organization_id'))
        batch_op.drop_index('ix_inconvenient_designation_org_guarantor')

    op.drop_table('inconvenient_designation')
    with op.batch_alter_table('confidential_comm_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_confidential_comm_request_organization_id'))
        batch_op.drop_index('ix_confidential_comm_request_org_guarantor')

    op.drop_table('confidential_comm_request')
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_step_organization_id'))

    op.drop_table('campaign_step')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_organization_id'))

    op.drop_table('campaign')
