"""Migration 0009_portal: its tables, row-level security on PostgreSQL, and a downgrade
that removes exactly them (then upgrades again)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from carecollect.db import Database
from carecollect.migrations.runner import alembic_config, upgrade

PORTAL_TABLES = {"portal_link", "portal_session", "portal_verification_attempt"}


def _downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config(db.engine.url.render_as_string(hide_password=False))
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def test_tables_and_row_level_security(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert names >= PORTAL_TABLES
    if not db.is_postgres:
        return
    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relname IN ('portal_link', 'portal_session', 'portal_verification_attempt')"
        )).all()
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        "portal_link": (True, True), "portal_session": (True, True),
        "portal_verification_attempt": (False, False)}


def test_downgrade_removes_the_portal_tables_and_upgrade_restores_them(db: Database) -> None:
    before = set(inspect(db.engine).get_table_names())
    _downgrade(db, "0008_audit_grants")
    db.engine.dispose()
    after = set(inspect(db.engine).get_table_names())
    assert not after & PORTAL_TABLES
    assert after >= {"guarantor", "payment", "payment_plan", "audit_event"}
    upgrade(db.engine)
    db.engine.dispose()
    assert set(inspect(db.engine).get_table_names()) == before
