"""Integrations: outbound webhook endpoints, the event outbox, deliveries and delivery
attempts; OIDC sign-in providers and identity links. Every table is a tenant table (row-
level security on PostgreSQL through `secure_new_tenant_tables`).

Revision ID: 0010_integrations
Revises: 0009_portal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0010_integrations"
down_revision = "0009_portal"
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "integration_event",
    "oidc_provider",
    "webhook_endpoint",
    "oidc_identity",
    "webhook_delivery",
    "webhook_delivery_attempt",
]


def upgrade() -> None:
    op.create_table('integration_event',
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_integration_event_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_event'))
    )
    op.create_index('ix_integration_event_org_created', 'integration_event', ['organization_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_integration_event_organization_id'), 'integration_event', ['organization_id'], unique=False)
    op.create_table('oidc_provider',
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret', sa.LargeBinary(), nullable=True),
    sa.Column('allowed_email_domain', sa.String(length=253), nullable=True),
    sa.Column('link_by_verified_email', sa.Boolean(), nullable=False),
    sa.Column('allow_provisioning', sa.Boolean(), nullable=False),
    sa.Column('default_role', sa.String(length=32), nullable=True),
    sa.Column('role_claim', sa.String(length=64), nullable=True),
    sa.Column('role_mapping', sa.JSON(), nullable=False),
    sa.Column('idp_enforces_mfa', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_oidc_provider_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_provider')),
    sa.UniqueConstraint('organization_id', name=op.f('uq_oidc_provider_organization_id'))
    )
    op.create_index(op.f('ix_oidc_provider_organization_id'), 'oidc_provider', ['organization_id'], unique=False)
    op.create_table('webhook_endpoint',
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_webhook_endpoint_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint'))
    )
    op.create_index(op.f('ix_webhook_endpoint_organization_id'), 'webhook_endpoint', ['organization_id'], unique=False)
    op.create_table('oidc_identity',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_oidc_identity_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['oidc_provider.id'], name=op.f('fk_oidc_identity_provider_id_oidc_provider'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_oidc_identity_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_identity')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_oidc_identity_issuer_subject'))
    )
    op.create_index(op.f('ix_oidc_identity_organization_id'), 'oidc_identity', ['organization_id'], unique=False)
    op.create_index(op.f('ix_oidc_identity_provider_id'), 'oidc_identity', ['provider_id'], unique=False)
    op.create_index(op.f('ix_oidc_identity_user_id'), 'oidc_identity', ['user_id'], unique=False)
    op.create_table('webhook_delivery',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=32), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_webhook_delivery_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['integration_event.id'], name=op.f('fk_webhook_delivery_event_id_integration_event'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_webhook_delivery_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery')),
    sa.UniqueConstraint('event_id', 'endpoint_id', name=op.f('uq_webhook_delivery_event_id_endpoint_id'))
    )
    op.create_index(op.f('ix_webhook_delivery_endpoint_id'), 'webhook_delivery', ['endpoint_id'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_event_id'), 'webhook_delivery', ['event_id'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_organization_id'), 'webhook_delivery', ['organization_id'], unique=False)
    op.create_table('webhook_delivery_attempt',
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], name=op.f('fk_webhook_delivery_attempt_delivery_id_webhook_delivery'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_webhook_delivery_attempt_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery_attempt'))
    )
    op.create_index(op.f('ix_webhook_delivery_attempt_delivery_id'), 'webhook_delivery_attempt', ['delivery_id'], unique=False)
    op.create_index(op.f('ix_webhook_delivery_attempt_organization_id'), 'webhook_delivery_attempt', ['organization_id'], unique=False)
    secure_new_tenant_tables(TENANT_TABLES)


def downgrade() -> None:
    op.drop_index(op.f('ix_webhook_delivery_attempt_organization_id'), table_name='webhook_delivery_attempt')
    op.drop_index(op.f('ix_webhook_delivery_attempt_delivery_id'), table_name='webhook_delivery_attempt')
    op.drop_table('webhook_delivery_attempt')
    op.drop_index(op.f('ix_webhook_delivery_organization_id'), table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_event_id'), table_name='webhook_delivery')
    op.drop_index(op.f('ix_webhook_delivery_endpoint_id'), table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index(op.f('ix_oidc_identity_user_id'), table_name='oidc_identity')
    op.drop_index(op.f('ix_oidc_identity_provider_id'), table_name='oidc_identity')
    op.drop_index(op.f('ix_oidc_identity_organization_id'), table_name='oidc_identity')
    op.drop_table('oidc_identity')
    op.drop_index(op.f('ix_webhook_endpoint_organization_id'), table_name='webhook_endpoint')
    op.drop_table('webhook_endpoint')
    op.drop_index(op.f('ix_oidc_provider_organization_id'), table_name='oidc_provider')
    op.drop_table('oidc_provider')
    op.drop_index(op.f('ix_integration_event_organization_id'), table_name='integration_event')
    op.drop_index('ix_integration_event_org_created', table_name='integration_event')
    op.drop_table('integration_event')
