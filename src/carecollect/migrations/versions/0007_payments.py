"""Payments and payment plans: saved methods, payments (unique by processor id),
allocations, refunds and chargebacks, accepted webhook events (replay guard), plan
policies, plans, installments and autopay charge attempts; row-level security on
PostgreSQL like 0001_foundation (the webhook-event table is not a tenant table).

Revision ID: 0007_payments
Revises: 0006_outreach
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from carecollect.migrations.security import enable_tenant_isolation, grant_all_tables

revision = "0007_payments"
down_revision = "0006_outreach"
branch_labels = None
depends_on = None

TENANT_TABLES = ['saved_payment_method', 'payment', 'payment_allocation', 'payment_reversal', 'plan_policy', 'payment_plan', 'plan_installment', 'plan_charge_attempt']


def upgrade() -> None:
    op.create_table('payment_webhook_event',
    sa.Column('processor', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=120), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_webhook_event')),
    sa.UniqueConstraint('processor', 'event_id', name=op.f('uq_payment_webhook_event_processor_event_id'))
    )
    op.create_table('plan_policy',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('min_down_payment_cents', sa.BigInteger(), nullable=False),
    sa.Column('min_down_payment_bps', sa.Integer(), nullable=False),
    sa.Column('min_installment_cents', sa.BigInteger(), nullable=False),
    sa.Column('term_tiers', sa.JSON(), nullable=False),
    sa.Column('interest_bps', sa.Integer(), nullable=False),
    sa.Column('setup_fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_authorized_by_agreement', sa.Boolean(), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('retry_days', sa.JSON(), nullable=False),
    sa.Column('misses_to_default', sa.Integer(), nullable=False),
    sa.Column('allow_self_service', sa.Boolean(), nullable=False),
    sa.Column('autopay_hour_local', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_plan_policy_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_policy')),
    sa.UniqueConstraint('organization_id', 'key', name=op.f('uq_plan_policy_organization_id_key'))
    )
    op.create_index(op.f('ix_plan_policy_organization_id'), 'plan_policy', ['organization_id'], unique=False)
    op.create_table('saved_payment_method',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('processor', sa.String(length=16), nullable=False),
    sa.Column('processor_customer_id', sa.String(length=120), nullable=False),
    sa.Column('processor_method_id', sa.String(length=120), nullable=False),
    sa.Column('brand', sa.String(length=16), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=True),
    sa.Column('exp_year', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('autopay_consented_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_saved_payment_method_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_saved_payment_method_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_payment_method')),
    sa.UniqueConstraint('processor', 'processor_method_id', name=op.f('uq_saved_payment_method_processor_processor_method_id'))
    )
    op.create_index('ix_saved_payment_method_org_guarantor', 'saved_payment_method', ['organization_id', 'guarantor_id'], unique=False)
    op.create_index(op.f('ix_saved_payment_method_organization_id'), 'saved_payment_method', ['organization_id'], unique=False)
    op.create_table('payment_plan',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('policy_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('down_payment_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('interest_bps', sa.Integer(), nullable=False),
    sa.Column('installment_count', sa.Integer(), nullable=False),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('autopay', sa.Boolean(), nullable=False),
    sa.Column('payment_method_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.String(length=16), nullable=False),
    sa.Column('charge_entry_ids', sa.JSON(), nullable=False),
    sa.Column('misses', sa.Integer(), nullable=False),
    sa.Column('state_code', sa.String(length=2), nullable=True),
    sa.Column('ca_medical_debt_term', sa.Boolean(), nullable=False),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pause_reason', sa.String(length=32), nullable=True),
    sa.Column('replaced_by_id', sa.Uuid(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_plan_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_payment_plan_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_payment_plan_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_method_id'], ['saved_payment_method.id'], name=op.f('fk_payment_plan_payment_method_id_saved_payment_method'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['plan_policy.id'], name=op.f('fk_payment_plan_policy_id_plan_policy'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_plan'))
    )
    op.create_index('ix_payment_plan_org_account', 'payment_plan', ['organization_id', 'account_id'], unique=False)
    op.create_index(op.f('ix_payment_plan_organization_id'), 'payment_plan', ['organization_id'], unique=False)
    op.create_table('payment',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('processor', sa.String(length=16), nullable=False),
    sa.Column('processor_payment_id', sa.String(length=120), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reversed_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=True),
    sa.Column('installment_id', sa.Uuid(), nullable=True),
    sa.Column('payment_method_id', sa.Uuid(), nullable=True),
    sa.Column('ledger_entry_id', sa.Uuid(), nullable=True),
    sa.Column('receipt_number', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_payment_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entry.id'], name=op.f('fk_payment_ledger_entry_id_ledger_entry'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_payment_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_method_id'], ['saved_payment_method.id'], name=op.f('fk_payment_payment_method_id_saved_payment_method'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('processor', 'processor_payment_id', name=op.f('uq_payment_processor_processor_payment_id'))
    )
    op.create_index('ix_payment_org_account', 'payment', ['organization_id', 'account_id'], unique=False)
    op.create_index(op.f('ix_payment_organization_id'), 'payment', ['organization_id'], unique=False)
    op.create_table('plan_installment',
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_on', sa.Date(), nullable=True),
    sa.Column('missed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_plan_installment_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['payment_plan.id'], name=op.f('fk_plan_installment_plan_id_payment_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_installment')),
    sa.UniqueConstraint('plan_id', 'sequence', name=op.f('uq_plan_installment_plan_id_sequence'))
    )
    op.create_index('ix_plan_installment_org_due', 'plan_installment', ['organization_id', 'status', 'due_on'], unique=False)
    op.create_index(op.f('ix_plan_installment_organization_id'), 'plan_installment', ['organization_id'], unique=False)
    op.create_table('payment_reversal',
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('processor', sa.String(length=16), nullable=False),
    sa.Column('processor_reversal_id', sa.String(length=120), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('ledger_entry_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entry.id'], name=op.f('fk_payment_reversal_ledger_entry_id_ledger_entry'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_payment_reversal_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_payment_reversal_payment_id_payment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_reversal')),
    sa.UniqueConstraint('processor', 'processor_reversal_id', name=op.f('uq_payment_reversal_processor_processor_reversal_id'))
    )
    op.create_index(op.f('ix_payment_reversal_organization_id'), 'payment_reversal', ['organization_id'], unique=False)
    op.create_index(op.f('ix_payment_reversal_payment_id'), 'payment_reversal', ['payment_id'], unique=False)
    op.create_table('plan_charge_attempt',
    sa.Column('installment_id', sa.Uuid(), nullable=False),
    sa.Column('attempt_number', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('processor_payment_id', sa.String(length=120), nullable=True),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['installment_id'], ['plan_installment.id'], name=op.f('fk_plan_charge_attempt_installment_id_plan_installment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_plan_charge_attempt_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_charge_attempt')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_plan_charge_attempt_idempotency_key')),
    sa.UniqueConstraint('installment_id', 'attempt_number', name=op.f('uq_plan_charge_attempt_installment_id_attempt_number'))
    )
    op.create_index(op.f('ix_plan_charge_attempt_installment_id'), 'plan_charge_attempt', ['installment_id'], unique=False)
    op.create_index(op.f('ix_plan_charge_attempt_organization_id'), 'plan_charge_attempt', ['organization_id'], unique=False)
    op.create_table('payment_allocation',
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('reversal_id', sa.Uuid(), nullable=True),
    sa.Column('charge_entry_id', sa.Uuid(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['charge_entry_id'], ['ledger_entry.id'], name=op.f('fk_payment_allocation_charge_entry_id_ledger_entry'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_payment_allocation_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_payment_allocation_payment_id_payment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reversal_id'], ['payment_reversal.id'], name=op.f('fk_payment_allocation_reversal_id_payment_reversal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_allocation'))
    )
    op.create_index('ix_payment_allocation_org_charge', 'payment_allocation', ['organization_id', 'charge_entry_id'], unique=False)
    op.create_index(op.f('ix_payment_allocation_organization_id'), 'payment_allocation', ['organization_id'], unique=False)
    op.create_index(op.f('ix_payment_allocation_payment_id'), 'payment_allocation', ['payment_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgres_security(context.config.attributes.get("app_role", "carecollect_app"))


def _postgres_security(role: str) -> None:
    """RLS exactly as 0001_foundation: ENABLE + FORCE, tenant_isolation for the application
    role, owner_access for the owner (the autopay sweep runs in a system session)."""
    grant_all_tables(role)
    enable_tenant_isolation(TENANT_TABLES)


def downgrade() -> None:
    op.drop_index(op.f('ix_payment_allocation_payment_id'), table_name='payment_allocation')
    op.drop_index(op.f('ix_payment_allocation_organization_id'), table_name='payment_allocation')
    op.drop_index('ix_payment_allocation_org_charge', table_name='payment_allocation')
    op.drop_table('payment_allocation')
    op.drop_index(op.f('ix_plan_charge_attempt_organization_id'), table_name='plan_charge_attempt')
    op.drop_index(op.f('ix_plan_charge_attempt_installment_id'), table_name='plan_charge_attempt')
    op.drop_table('plan_charge_attempt')
    op.drop_index(op.f('ix_payment_reversal_payment_id'), table_name='payment_reversal')
    op.drop_index(op.f('ix_payment_reversal_organization_id'), table_name='payment_reversal')
    op.drop_table('payment_reversal')
    op.drop_index(op.f('ix_plan_installment_organization_id'), table_name='plan_installment')
    op.drop_index('ix_plan_installment_org_due', table_name='plan_installment')
    op.drop_table('plan_installment')
    op.drop_index(op.f('ix_payment_organization_id'), table_name='payment')
    op.drop_index('ix_payment_org_account', table_name='payment')
    op.drop_table('payment')
    op.drop_index(op.f('ix_payment_plan_organization_id'), table_name='payment_plan')
    op.drop_index('ix_payment_plan_org_account', table_name='payment_plan')
    op.drop_table('payment_plan')
    op.drop_index(op.f('ix_saved_payment_method_organization_id'), table_name='saved_payment_method')
    op.drop_index('ix_saved_payment_method_org_guarantor', table_name='saved_payment_method')
    op.drop_table('saved_payment_method')
    op.drop_index(op.f('ix_plan_policy_organization_id'), table_name='plan_policy')
    op.drop_table('plan_policy')
    op.drop_table('payment_webhook_event')
