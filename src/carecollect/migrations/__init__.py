"""Alembic migrations shipped inside the package so `carecollect db upgrade` needs no repo."""
