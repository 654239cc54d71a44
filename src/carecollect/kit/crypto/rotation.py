"""Data-key rotation (resumable re-encryption) and crypto-shredding.

Rotation of an organization's encryption key (docs/CRYPTO.md, "Rotation"):

1. One transaction: the active key becomes ``decrypt_only`` (with an empty progress
   cursor) and a new ``active`` key is created. From then on new values are sealed with
   the new key; old ones still open.
2. Every `SealedType` column of every tenant table (found by introspecting the metadata)
   is re-encrypted in committed batches of `batch_size` rows: only rows with a value
   whose header names another key are read (filtered in SQL on the 4 key-id bytes). The
   old key's ``rotation_cursor`` records ``table:last id`` in the same transaction as
   each batch, so a crash loses at most one batch and a second call resumes there.
3. After every process's key cache has expired (one TTL after the new key was created, so
   no process still seals with the old key), a verification sweep re-encrypts anything
   left over, and the old key becomes ``retired``.

Each update is conditional on the ciphertext it read (optimistic concurrency): a value a
user changed meanwhile is never overwritten with the stale plaintext; the sweep picks it
up if it still needs re-encryption.

Crypto-shredding deletes an organization's `data_key` rows: without them, none of its
ciphertexts can be decrypted, wherever copies of them live (backups taken before the
shredding still hold the wrapped keys; their retention must be bounded).
HIPAA-SEC-ENCRYPT / NIST SP 800-88: destroying the keys of encrypted media is an
accepted purge (cryptographic erase).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    LargeBinary,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from carecollect.db import Database
from carecollect.errors import ConfigurationError
from carecollect.kit.crypto.errors import KeyUnavailable
from carecollect.kit.crypto.keys import (
    PURPOSE_ENCRYPTION,
    STATE_ACTIVE,
    STATE_DECRYPT_ONLY,
    STATE_RETIRED,
    KeyManager,
)
from carecollect.kit.crypto.models import DATA_KEY_TABLE, DataKey
from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base

# Caches are bounded by the TTL measured from when each process loaded its keys; the
# margin covers the moment between the new key's created_at and the commit that shows it.
SETTLE_MARGIN_SECONDS = 5
_KEYS = DATA_KEY_TABLE


@dataclass(frozen=True)
class EncryptedTable:
    """A tenant table with encrypted columns, as rotation sees it."""

    table: Table
    columns: tuple[str, ...]
    # Columns with an ON UPDATE default (updated_at): written back unchanged, because
    # re-encryption is not a change of the record.
    preserved: tuple[str, ...]


@dataclass(frozen=True)
class RotationReport:
    organization_id: UUID
    new_key_id: int
    old_key_ids: tuple[int, ...]
    resumed: bool
    batches: int
    rows_reencrypted: int
    values_reencrypted: int
    retired: bool

    @property
    def reencrypted(self) -> int:
        """Encrypted values moved to the new key."""
        return self.values_reencrypted


def encrypted_tables(metadata: MetaData | None = None) -> list[EncryptedTable]:
    """Every table with `organization_id`, an `id` and at least one `SealedType` column.

    Only tables whose models were imported are in `Base.metadata`; callers import
    `carecollect.all_models` first (and `rotate_organization_key` checks the database
    for tenant tables it does not know).
    """
    found: list[EncryptedTable] = []
    for table in sorted((metadata or Base.metadata).tables.values(), key=lambda t: t.name):
        if "organization_id" not in table.c or "id" not in table.c:
            continue
        columns = tuple(c.name for c in table.c if isinstance(c.type, SealedType))
        if columns:
            preserved = tuple(c.name for c in table.c if c.onupdate is not None)
            found.append(EncryptedTable(table, columns, preserved))
    return found


def _check_known_tables(db: Database, targets: Sequence[EncryptedTable]) -> None:
    """Refuse to rotate when the database has tenant tables with binary columns this
    process cannot see: their rows would stay on the old key and become unreadable once it
    is retired. (Encrypted columns are BLOB/BYTEA; other unknown tables are harmless.)"""
    known = set(Base.metadata.tables) | {t.table.name for t in targets}
    inspector = inspect(db.engine)
    unknown: list[str] = []
    for name in sorted(set(inspector.get_table_names()) - known):
        columns = inspector.get_columns(name)
        if any(c["name"] == "organization_id" for c in columns) and any(
            isinstance(c["type"], LargeBinary) for c in columns
        ):
            unknown.append(name)
    if unknown:
        raise ConfigurationError(
            "cannot rotate keys: tenant tables unknown to this process: "
            + ", ".join(unknown)
            + " (import carecollect.all_models)"
        )


def _parse_cursor(cursor: str | None) -> tuple[str, str]:
    if not cursor:
        return "", ""
    table, _, last_id = cursor.partition(":")
    return table, last_id


class _Rotator:
    def __init__(
        self,
        db: Database,
        organization_id: UUID,
        key_manager: KeyManager,
        new_key_id: int,
        old_key_ids: tuple[int, ...],
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.db = db
        self.organization_id = organization_id
        self.key_manager = key_manager
        self.new_key_id = new_key_id
        self.old_key_ids = old_key_ids
        self.batch_size = batch_size
        self.progress = progress
        self.batches = 0
        self.rows = 0
        self.values = 0
        self._new_header = new_key_id.to_bytes(4, "big")

    def _needs_work(self, target: EncryptedTable) -> Any:
        # Bytes 3..6 (1-based) of the ciphertext are the key id; NULL never matches.
        header = literal(self._new_header, LargeBinary)
        return or_(
            *(
                func.substr(target.table.c[name], 3, 4, type_=LargeBinary) != header
                for name in target.columns
            )
        )

    def run_table(self, target: EncryptedTable, after: str, *, persist: bool) -> None:
        table = target.table
        id_type = table.c.id.type.python_type
        last: Any = id_type(after) if after else None
        while True:
            with self.db.tenant_session(self.organization_id) as session:
                done = self._batch(session, target, last)
                if done is None:
                    if persist:
                        self._save_cursor(session, f"{table.name}:~")
                    return
                last, rows, values = done
                if persist:
                    self._save_cursor(session, f"{table.name}:{last}")
            # Counted after the commit: the batch is durable now.
            self.batches += 1
            self.rows += rows
            self.values += values
            if self.progress is not None:
                self.progress(self.values)

    def _batch(
        self, session: Session, target: EncryptedTable, last: Any
    ) -> tuple[Any, int, int] | None:
        table = target.table
        query = (
            select(
                table.c.id,
                *(table.c[name] for name in target.columns),
                *(table.c[name] for name in target.preserved),
            )
            .where(table.c.organization_id == self.organization_id, self._needs_work(target))
            .order_by(table.c.id)
            .limit(self.batch_size)
        )
        if last is not None:
            query = query.where(table.c.id > last)
        rows = session.execute(query).all()
        if not rows:
            return None
        cipher = self.key_manager.for_organization(session, self.organization_id).cipher()
        if cipher.active_key_id != self.new_key_id:
            raise KeyUnavailable("the key being rotated to is no longer the active key")
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        values = 0
        for row in rows:
            mapping = row._mapping
            params: dict[str, Any] = {"_id": row.id}
            changed: list[str] = []
            for name in target.columns:
                sealed: Sealed | None = mapping[name]
                if sealed is None or sealed.key_id == self.new_key_id:
                    continue
                plaintext = cipher.open(sealed, table.name, name, row.id)
                params[f"_new_{name}"] = cipher.seal(table.name, name, row.id, plaintext)
                params[f"_old_{name}"] = sealed
                changed.append(name)
            for name in target.preserved:
                params[f"_keep_{name}"] = mapping[name]
            values += len(changed)
            groups.setdefault(tuple(changed), []).append(params)
        for changed_columns, batch in groups.items():
            if not changed_columns:
                continue
            statement = (
                update(table)
                .where(
                    table.c.id == bindparam("_id", type_=table.c.id.type),
                    table.c.organization_id == self.organization_id,
                    # Only if nobody changed the value since it was read.
                    and_(
                        *(
                            table.c[name] == bindparam(f"_old_{name}", type_=table.c[name].type)
                            for name in changed_columns
                        )
                    ),
                )
                .values(
                    {
                        **{
                            name: bindparam(f"_new_{name}", type_=table.c[name].type)
                            for name in changed_columns
                        },
                        **{
                            name: bindparam(f"_keep_{name}", type_=table.c[name].type)
                            for name in target.preserved
                        },
                    }
                )
            )
            session.connection().execute(statement, batch)
        return rows[-1].id, len(rows), values

    def _save_cursor(self, session: Session, cursor: str) -> None:
        session.execute(
            update(_KEYS).where(_KEYS.c.id.in_(self.old_key_ids)).values(rotation_cursor=cursor)
        )


def rotate_organization_key(
    db: Database,
    organization_id: UUID,
    *,
    keys: KeyManager,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    tables: Iterable[EncryptedTable] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RotationReport:
    """Rotate the organization's encryption key, or resume an interrupted rotation.

    Returns when every encrypted value of the organization is under the new key and the
    old key is retired. Safe to call again after a crash at any point. `progress` is
    called after each committed batch with the number of values re-encrypted so far.
    """
    key_manager = keys
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    targets = list(tables) if tables is not None else encrypted_tables()
    targets.sort(key=lambda t: t.table.name)
    _check_known_tables(db, targets)

    with db.tenant_session(organization_id) as session:
        current = session.scalars(
            select(DataKey)
            .where(
                DataKey.organization_id == organization_id,
                DataKey.purpose == PURPOSE_ENCRYPTION,
                DataKey.state.in_((STATE_ACTIVE, STATE_DECRYPT_ONLY)),
            )
            .order_by(DataKey.created_at, DataKey.id)
            .with_for_update()
        ).all()
        active = [k for k in current if k.state == STATE_ACTIVE]
        old = [k for k in current if k.state == STATE_DECRYPT_ONLY]
        if not active:
            raise KeyUnavailable(
                f"organization {organization_id} has no active encryption key to rotate"
            )
        resumed = bool(old)
        if resumed:
            new_key_id, activated_at = active[-1].id, active[-1].created_at
            cursor = min((k.rotation_cursor or "" for k in old), default="")
        else:
            old = active
            session.execute(
                update(_KEYS)
                .where(_KEYS.c.id.in_([k.id for k in old]))
                .values(state=STATE_DECRYPT_ONLY, rotation_cursor="")
            )
            created = key_manager.new_data_key(session, organization_id, PURPOSE_ENCRYPTION)
            new_key_id, activated_at = created.id, created.created_at
            cursor = ""
        old_key_ids = tuple(k.id for k in old)
    key_manager.invalidate(organization_id)

    rotator = _Rotator(
        db, organization_id, key_manager, new_key_id, old_key_ids, batch_size, progress
    )
    start_table, start_after = _parse_cursor(cursor)
    for target in targets:
        name = target.table.name
        if name < start_table:
            continue
        after = start_after if name == start_table else ""
        if after == "~":  # that table was finished before the interruption
            continue
        rotator.run_table(target, after, persist=True)

    # Wait until no process can still hold a cached snapshot whose active key is the old
    # one, then sweep once more from the start for values written meanwhile.
    if key_manager.ttl_seconds > 0:
        settle_until = activated_at + timedelta(
            seconds=key_manager.ttl_seconds + SETTLE_MARGIN_SECONDS
        )
        remaining = (settle_until - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            sleep(remaining)
    for target in targets:
        rotator.run_table(target, "", persist=False)

    with db.tenant_session(organization_id) as session:
        session.execute(
            update(_KEYS)
            .where(_KEYS.c.id.in_(old_key_ids), _KEYS.c.organization_id == organization_id)
            .values(state=STATE_RETIRED, retired_at=datetime.now(UTC), rotation_cursor=None)
        )
    key_manager.invalidate(organization_id)
    return RotationReport(
        organization_id=organization_id,
        new_key_id=new_key_id,
        old_key_ids=old_key_ids,
        resumed=resumed,
        batches=rotator.batches,
        rows_reencrypted=rotator.rows,
        values_reencrypted=rotator.values,
        retired=True,
    )


def shred_organization(
    session: Session, organization_id: UUID, *, key_manager: KeyManager | None = None
) -> int:
    """Delete every data key of the organization (crypto-shredding); return how many.

    Irreversible: afterwards none of the organization's PHI can be decrypted, and
    `KeyManager.for_organization` fails with `KeyUnavailable`. Other processes drop their
    cached copies within one key-cache TTL.
    """
    result = session.execute(delete(_KEYS).where(_KEYS.c.organization_id == organization_id))
    if key_manager is not None:
        key_manager.invalidate(organization_id)
    return int(getattr(result, "rowcount", 0) or 0)
