"""Foundation: tenants, keys, patients, ledger, consent, contact history; RLS on PostgreSQL.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "location", "business_associate", "data_key", "guarantor", "patient", "contact_point",
    "account", "flag", "ledger_entry", "consent", "revocation", "contact_event",
]


def upgrade() -> None:
    op.create_table('organization',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('billing_display_name', sa.String(length=100), nullable=False),
    sa.Column('entity_kind', sa.String(length=40), nullable=False),
    sa.Column('provider_license_state', sa.String(length=2), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('operated_by_covered_entity', sa.Boolean(), nullable=False),
    sa.Column('blind_index_bits', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organization')),
    sa.UniqueConstraint('slug', name=op.f('uq_organization_slug'))
    )
    op.create_table('data_key',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('kek_id', sa.String(length=64), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rotation_cursor', sa.String(length=200), nullable=True),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_data_key_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_key'))
    )
    op.create_index(op.f('ix_data_key_organization_id'), 'data_key', ['organization_id'], unique=False)
    op.create_index(
        "uq_data_key_one_active", "data_key", ["organization_id", "purpose"], unique=True,
        sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table('guarantor',
    sa.Column('first_name', sa.LargeBinary(), nullable=False),
    sa.Column('last_name', sa.LargeBinary(), nullable=False),
    sa.Column('date_of_birth', sa.LargeBinary(), nullable=True),
    sa.Column('name_dob_bidx', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=2), nullable=True),
    sa.Column('mailing_tz', sa.String(length=64), nullable=True),
    sa.Column('other_known_tz', sa.JSON(), nullable=False),
    sa.Column('city_is_nyc', sa.Boolean(), nullable=False),
    sa.Column('preferred_language', sa.String(length=8), nullable=False),
    sa.Column('source_key', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_guarantor_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guarantor'))
    )
    op.create_index('ix_guarantor_org_name_dob_bidx', 'guarantor', ['organization_id', 'name_dob_bidx'], unique=False)
    op.create_index('ix_guarantor_org_source', 'guarantor', ['organization_id', 'source_key'], unique=True)
    op.create_index(op.f('ix_guarantor_organization_id'), 'guarantor', ['organization_id'], unique=False)
    op.create_table('location',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('postal_code', sa.String(length=10), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_location_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location'))
    )
    op.create_index(op.f('ix_location_organization_id'), 'location', ['organization_id'], unique=False)
    op.create_table('account',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=True),
    sa.Column('account_number', sa.LargeBinary(), nullable=False),
    sa.Column('account_number_bidx', sa.BigInteger(), nullable=True),
    sa.Column('debt_kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_delinquency_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source_key', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_account_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_account_location_id_location'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_account_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account'))
    )
    op.create_index(op.f('ix_account_guarantor_id'), 'account', ['guarantor_id'], unique=False)
    op.create_index('ix_account_org_number_bidx', 'account', ['organization_id', 'account_number_bidx'], unique=False)
    op.create_index('ix_account_org_source', 'account', ['organization_id', 'source_key'], unique=True)
    op.create_index(op.f('ix_account_organization_id'), 'account', ['organization_id'], unique=False)
    op.create_table('business_associate',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=32), nullable=False),
    sa.Column('baa_status', sa.String(length=16), nullable=False),
    sa.Column('baa_effective_on', sa.Date(), nullable=True),
    sa.Column('baa_expires_on', sa.Date(), nullable=True),
    sa.Column('baa_document_sha256', sa.String(length=64), nullable=True),
    sa.Column('baa_signatories', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.Uuid(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('location_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_business_associate_location_id_location'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_business_associate_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_associate')),
    sa.UniqueConstraint('organization_id', 'name', name=op.f('uq_business_associate_organization_id_name'))
    )
    op.create_index(op.f('ix_business_associate_organization_id'), 'business_associate', ['organization_id'], unique=False)
    op.create_table('contact_point',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.LargeBinary(), nullable=False),
    sa.Column('value_bidx', sa.BigInteger(), nullable=True),
    sa.Column('postal_code', sa.LargeBinary(), nullable=True),
    sa.Column('line_type', sa.String(length=24), nullable=True),
    sa.Column('area_code_tzs', sa.JSON(), nullable=False),
    sa.Column('address_tz', sa.String(length=64), nullable=True),
    sa.Column('owner', sa.String(length=16), nullable=False),
    sa.Column('employer_provided', sa.Boolean(), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_contact_point_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_contact_point_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_point'))
    )
    op.create_index(op.f('ix_contact_point_guarantor_id'), 'contact_point', ['guarantor_id'], unique=False)
    op.create_index('ix_contact_point_org_value_bidx', 'contact_point', ['organization_id', 'value_bidx'], unique=False)
    op.create_index(op.f('ix_contact_point_organization_id'), 'contact_point', ['organization_id'], unique=False)
    op.create_table('patient',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('relationship_to_guarantor', sa.String(length=16), nullable=False),
    sa.Column('first_name', sa.LargeBinary(), nullable=False),
    sa.Column('last_name', sa.LargeBinary(), nullable=False),
    sa.Column('date_of_birth', sa.LargeBinary(), nullable=True),
    sa.Column('name_dob_bidx', sa.BigInteger(), nullable=True),
    sa.Column('sex', sa.LargeBinary(), nullable=True),
    sa.Column('minor', sa.Boolean(), nullable=False),
    sa.Column('source_key', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_patient_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_patient_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient'))
    )
    op.create_index(op.f('ix_patient_guarantor_id'), 'patient', ['guarantor_id'], unique=False)
    op.create_index('ix_patient_org_name_dob_bidx', 'patient', ['organization_id', 'name_dob_bidx'], unique=False)
    op.create_index('ix_patient_org_source', 'patient', ['organization_id', 'source_key'], unique=True)
    op.create_index(op.f('ix_patient_organization_id'), 'patient', ['organization_id'], unique=False)
    op.create_table('consent',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('given_to', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('wording_version', sa.String(length=40), nullable=True),
    sa.Column('captured_by', sa.String(length=80), nullable=True),
    sa.Column('evidence', sa.LargeBinary(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_consent_contact_point_id_contact_point'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_consent_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_consent_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent'))
    )
    op.create_index('ix_consent_org_guarantor', 'consent', ['organization_id', 'guarantor_id'], unique=False)
    op.create_index(op.f('ix_consent_organization_id'), 'consent', ['organization_id'], unique=False)
    op.create_table('contact_event',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('person', sa.String(length=24), nullable=False),
    sa.Column('dialer', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('account_ids', sa.JSON(), nullable=False),
    sa.Column('text', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_contact_event_contact_point_id_contact_point'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_contact_event_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_contact_event_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_event'))
    )
    op.create_index('ix_contact_event_org_guarantor_at', 'contact_event', ['organization_id', 'guarantor_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_contact_event_organization_id'), 'contact_event', ['organization_id'], unique=False)
    op.create_table('flag',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('in_writing', sa.Boolean(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_flag_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_flag_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_flag_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag'))
    )
    op.create_index('ix_flag_org_guarantor_kind', 'flag', ['organization_id', 'guarantor_id', 'kind'], unique=False)
    op.create_index(op.f('ix_flag_organization_id'), 'flag', ['organization_id'], unique=False)
    op.create_table('ledger_entry',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('service_date', sa.LargeBinary(), nullable=True),
    sa.Column('procedure_codes', sa.LargeBinary(), nullable=True),
    sa.Column('description', sa.LargeBinary(), nullable=True),
    sa.Column('applies_to_entry_id', sa.Uuid(), nullable=True),
    sa.Column('external_reference', sa.String(length=120), nullable=True),
    sa.Column('source_key', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_ledger_entry_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['applies_to_entry_id'], ['ledger_entry.id'], name=op.f('fk_ledger_entry_applies_to_entry_id_ledger_entry'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_ledger_entry_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_ledger_entry_patient_id_patient'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    op.create_index('ix_ledger_entry_account_posted', 'ledger_entry', ['account_id', 'posted_at'], unique=False)
    op.create_index('ix_ledger_entry_org_source', 'ledger_entry', ['organization_id', 'source_key'], unique=True)
    op.create_index(op.f('ix_ledger_entry_organization_id'), 'ledger_entry', ['organization_id'], unique=False)
    op.create_table('revocation',
    sa.Column('guarantor_id', sa.Uuid(), nullable=False),
    sa.Column('contact_point_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('text', sa.LargeBinary(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_point_id'], ['contact_point.id'], name=op.f('fk_revocation_contact_point_id_contact_point'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guarantor_id'], ['guarantor.id'], name=op.f('fk_revocation_guarantor_id_guarantor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_revocation_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation'))
    )
    op.create_index('ix_revocation_org_guarantor', 'revocation', ['organization_id', 'guarantor_id'], unique=False)
    op.create_index(op.f('ix_revocation_organization_id'), 'revocation', ['organization_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _postgres_security(context.config.attributes.get("app_role", "carecollect_app"))


def _postgres_security(role: str) -> None:
    """Row-level security (ARCHITECTURE.md section 3) and the non-owner application role.

    The application switches to `role` for tenant transactions; the role owns nothing, so
    RLS (ENABLE + FORCE) applies to it and it sees only rows whose organization_id equals
    the transaction's `carecollect.organization_id` setting. Without the setting it sees
    nothing: NULLIF turns the unset ('' or NULL) setting into NULL, and NULL = x is never true.
    """
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE "{role}" NOLOGIN;
          END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    op.execute(f'GRANT "{role}" TO CURRENT_USER')
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    op.execute(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public '
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
    )
    op.execute(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"'
    )
    tenant = "NULLIF(current_setting('carecollect.organization_id', true), '')::uuid"
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (organization_id = {tenant}) WITH CHECK (organization_id = {tenant})"
        )
        # FORCE subjects the owner too; the owner (migrations, init, the cross-tenant
        # integrator and job claimer) keeps full access through its own policy, while the
        # application role has only tenant_isolation.
        op.execute(f"CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true)")
    op.execute("ALTER TABLE organization ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organization FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON organization "
        f"USING (id = {tenant}) WITH CHECK (id = {tenant})"
    )
    op.execute("CREATE POLICY owner_access ON organization TO CURRENT_USER USING (true)")


def downgrade() -> None:
    raise NotImplementedError("the foundation migration is not reversible")
