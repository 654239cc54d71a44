from __future__ import annotations

from sqlalchemy import inspect

from carecollect.all_models import tenant_tables
from carecollect.db import Database
from carecollect.migrations.runner import current_revision, head_revision


def test_migrated_to_head_with_every_table(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    names = set(inspect(db.engine).get_table_names())
    for table in [*tenant_tables(), "organization"]:
        assert table in names


def test_migrations_match_the_models(db: Database) -> None:
    """What Alembic would autogenerate against the migrated database is nothing: every
    table, column (with its type), index and foreign key of the models is created by a
    migration, and no migration creates anything the models do not know."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from carecollect.all_models import Base

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
