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
