"""What every command needs: settings from `--data-dir`, the database, the key manager."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from carecollect.config import Settings, load_settings
from carecollect.db import Database
from carecollect.errors import ConfigurationError
from carecollect.kit.crypto.keyring import load_key_provider
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.kit.logging import configure_logging

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CARECOLLECT_DATA_DIR",
        help="Data directory (keys, SQLite database, checkpoints).",
        show_default=False,
    ),
]
OrganizationOption = Annotated[
    str | None,
    typer.Option("--organization", help="Organization slug or id (default: the only one)."),
]


@dataclass
class Context:
    """Settings, database and keys for one command invocation."""

    settings: Settings
    _db: Database | None = field(default=None, repr=False)
    _keys: KeyManager | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db

    @property
    def keys(self) -> KeyManager:
        if self._keys is None:
            provider = load_key_provider(self.settings)
            self._keys = KeyManager(
                provider,
                ttl_seconds=self.settings.key_cache_ttl_seconds,
                planned_rows=self.settings.planned_patients,
            )
        return self._keys

    def organization_keys(self, organization_id: uuid.UUID) -> OrganizationKeys:
        from carecollect.tenant.models import Organization

        with self.db.system_session() as session:
            org = session.get(Organization, organization_id)
            bits = org.blind_index_bits if org is not None else None
            return self.keys.for_organization(session, organization_id, blind_index_bits=bits)

    def resolve_organization(self, slug_or_id: str | None) -> uuid.UUID:
        from carecollect.tenant.service import get_organization, only_organization

        with self.db.system_session() as session:
            org = (
                get_organization(session, slug_or_id) if slug_or_id else only_organization(session)
            )
            return org.id

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def open_context(data_dir: Path | None, *, must_exist: bool = True) -> Context:
    """Load settings for `data_dir`; with `must_exist`, the directory must be initialized."""
    configure_logging("WARNING")
    settings = load_settings(data_dir=data_dir)
    if must_exist and settings.database_url is None and not settings.data_dir.is_dir():
        raise ConfigurationError(
            f"data directory {settings.data_dir} does not exist: run `carecollect init` first"
        )
    return Context(settings)
