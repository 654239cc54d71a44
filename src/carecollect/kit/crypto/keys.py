"""Per-organization data keys: creation, unwrapping with a TTL cache, KEK re-wrapping.

Each organization has one ``active`` encryption key (DEK) and one ``active`` blind-index
root, plus, during a DEK rotation, ``decrypt_only`` keys that still open old ciphertexts.
Keys are stored in `data_key` wrapped by the key provider's KEK; the associated data of
the wrap is (organization id, key id, purpose), so a wrapped key moved to another row or
organization does not unwrap.

Unwrapped keys live in memory for `ttl_seconds` (ARCHITECTURE.md section 4): a KMS call
per request would be slow and costly, and a bounded lifetime means a shredded or rotated
key leaves every process's memory within one TTL.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from carecollect.config import Settings
from carecollect.kit.crypto.blind import BlindIndexer, derive_index_key, plan_bits
from carecollect.kit.crypto.errors import KeyUnavailable
from carecollect.kit.crypto.fields import FieldCipher
from carecollect.kit.crypto.keyring import KeyProvider, load_key_provider
from carecollect.kit.crypto.models import DATA_KEY_TABLE, DataKey

PURPOSE_ENCRYPTION = "encryption"
PURPOSE_BLIND_INDEX = "blind_index"
PURPOSES = (PURPOSE_ENCRYPTION, PURPOSE_BLIND_INDEX)
STATE_ACTIVE = "active"
STATE_DECRYPT_ONLY = "decrypt_only"
STATE_RETIRED = "retired"
DATA_KEY_BYTES = 32
_WRAP_LABEL = b"carecollect/data_key/v1\x00"
# Sessions that created keys not yet committed: their snapshots must not be cached, or a
# rollback would leave a cached key that exists nowhere (data sealed with it is lost).
_UNCOMMITTED = "carecollect.crypto.uncommitted_key_orgs"


def wrap_associated_data(organization_id: UUID, key_id: int, purpose: str) -> bytes:
    """What a wrapped data key is bound to: its organization, id and purpose."""
    return _WRAP_LABEL + organization_id.bytes + key_id.to_bytes(4, "big") + purpose.encode()


def new_key_id() -> int:
    """A random 32-bit key id (never 0). Unique by primary key; a collision (2^-32 per
    key) surfaces as an IntegrityError and the caller retries."""
    return secrets.randbelow(2**32 - 1) + 1


class NewDataKey(NamedTuple):
    id: int
    purpose: str
    state: str
    kek_id: str
    created_at: datetime


class OrganizationKeys:
    """An immutable snapshot of one organization's unwrapped keys.

    What a request or job needs: `cipher()` to seal and open fields, `blind()` for blind
    indexes. Its `repr` shows ids only, never key material.
    """

    __slots__ = (
        "_blind",
        "_blind_root",
        "_cipher",
        "_encryption_keys",
        "_source_mac",
        "blind_index_bits",
        "encryption_key_id",
        "organization_id",
    )

    def __init__(
        self,
        organization_id: UUID,
        *,
        encryption_keys: Mapping[int, bytes],
        encryption_key_id: int,
        blind_root: bytes,
        blind_index_bits: int,
    ) -> None:
        self.organization_id = organization_id
        self.encryption_key_id = encryption_key_id
        self.blind_index_bits = blind_index_bits
        self._encryption_keys = dict(encryption_keys)
        self._blind_root = blind_root
        self._cipher: FieldCipher | None = None
        self._blind: BlindIndexer | None = None
        self._source_mac: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"<OrganizationKeys {self.organization_id} active={self.encryption_key_id} "
            f"keys={sorted(self._encryption_keys)}>"
        )

    @property
    def key_ids(self) -> frozenset[int]:
        """Ids of every data key that can decrypt here (active and decrypt-only)."""
        return frozenset(self._encryption_keys)

    def cipher(self) -> FieldCipher:
        # One cipher per snapshot so its per-column AES-GCM objects are built once.
        if self._cipher is None:
            self._cipher = FieldCipher(
                self.organization_id, self._encryption_keys, self.encryption_key_id
            )
        return self._cipher

    def source_key(self, system: str, source_id: str) -> int:
        """A 63-bit keyed hash of a source system's record id, for idempotent re-import.

        Unlike a blind index it is not truncated (collisions would merge two records), and
        it never stores the source id itself (MRNs and account numbers are identifiers).
        The key is derived from the blind-index root under its own HKDF label.
        """
        if self._source_mac is None:
            self._source_mac = derive_index_key(self._blind_root, "source_key")
        message = system.encode("utf-8") + b"\x00" + source_id.encode("utf-8")
        digest = hmac.digest(self._source_mac, message, "sha256")
        return int.from_bytes(digest[:8], "big") >> 1

    def blind(self) -> BlindIndexer:
        if self._blind is None:
            self._blind = BlindIndexer(self._blind_root, bits=self.blind_index_bits)
        return self._blind


class KeyManager:
    """Creates, unwraps, caches and re-wraps organizations' data keys. One per process."""

    def __init__(
        self,
        provider: KeyProvider,
        *,
        ttl_seconds: int = 300,
        planned_rows: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.ttl_seconds = ttl_seconds
        self.blind_index_bits = plan_bits(planned_rows)
        self._clock = clock
        self._cache: dict[tuple[UUID, int], tuple[float, OrganizationKeys]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyManager:
        return cls(
            load_key_provider(settings),
            ttl_seconds=settings.key_cache_ttl_seconds,
            planned_rows=settings.planned_patients,
        )

    def __repr__(self) -> str:
        return f"<KeyManager provider={self.provider.name} ttl={self.ttl_seconds}s>"

    # Creation ---------------------------------------------------------------------------

    def new_data_key(
        self, session: Session, organization_id: UUID, purpose: str, *, state: str = STATE_ACTIVE
    ) -> NewDataKey:
        """Generate, wrap and insert one data key (in the caller's transaction)."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown data-key purpose {purpose!r}")
        key_id = new_key_id()
        plaintext = secrets.token_bytes(DATA_KEY_BYTES)
        kek_id, wrapped = self.provider.wrap(
            plaintext, associated_data=wrap_associated_data(organization_id, key_id, purpose)
        )
        created_at = datetime.now(UTC)
        session.flush()  # the organization row, if the caller just added it
        # Core, not the unit of work: a flush sorts every mapped table by foreign key, which
        # fails in processes (CLI commands) that did not import the organization model.
        session.execute(
            insert(DATA_KEY_TABLE).values(
                id=key_id,
                organization_id=organization_id,
                purpose=purpose,
                state=state,
                kek_id=kek_id,
                wrapped_key=wrapped,
                created_at=created_at,
            )
        )
        session.info.setdefault(_UNCOMMITTED, set()).add(organization_id)
        return NewDataKey(key_id, purpose, state, kek_id, created_at)

    def create_organization_keys(self, session: Session, organization_id: UUID) -> None:
        """Create the organization's active encryption key and blind-index root.

        Idempotent: a purpose that already has an active key is left alone, so a retried
        `init` or organization creation does not orphan data.
        """
        existing = set(
            session.scalars(
                select(DataKey.purpose).where(
                    DataKey.organization_id == organization_id, DataKey.state == STATE_ACTIVE
                )
            )
        )
        for purpose in PURPOSES:
            if purpose not in existing:
                self.new_data_key(session, organization_id, purpose)
        self.invalidate(organization_id)

    # Loading ----------------------------------------------------------------------------

    def for_organization(
        self,
        session: Session,
        organization_id: UUID,
        *,
        blind_index_bits: int | None = None,
    ) -> OrganizationKeys:
        """The organization's unwrapped keys, from the cache while younger than the TTL.

        `blind_index_bits` overrides the planned width; pass the width recorded for the
        organization so that a later change of `planned_patients` cannot silently change
        the index values of existing rows. Fails closed with `KeyUnavailable`.
        """
        bits = blind_index_bits if blind_index_bits is not None else self.blind_index_bits
        cache_key = (organization_id, bits)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        keys = self._load(session, organization_id, bits)
        uncommitted = organization_id in session.info.get(_UNCOMMITTED, ())
        if self.ttl_seconds > 0 and not uncommitted:
            with self._lock:
                self._cache[cache_key] = (now + self.ttl_seconds, keys)
        return keys

    def _load(self, session: Session, organization_id: UUID, bits: int) -> OrganizationKeys:
        rows = session.scalars(
            select(DataKey)
            .where(
                DataKey.organization_id == organization_id,
                DataKey.state.in_((STATE_ACTIVE, STATE_DECRYPT_ONLY)),
            )
            .order_by(DataKey.created_at, DataKey.id)
        ).all()
        encryption: dict[int, bytes] = {}
        active: int | None = None
        blind_root: bytes | None = None
        for row in rows:
            plaintext = self.provider.unwrap(
                row.kek_id,
                row.wrapped_key,
                associated_data=wrap_associated_data(organization_id, row.id, row.purpose),
            )
            if len(plaintext) != DATA_KEY_BYTES:
                raise KeyUnavailable(f"data key {row.id} has the wrong length")
            if row.purpose == PURPOSE_ENCRYPTION:
                encryption[row.id] = plaintext
                if row.state == STATE_ACTIVE:
                    active = row.id  # ordered by creation: the newest active wins
            elif row.purpose == PURPOSE_BLIND_INDEX and row.state == STATE_ACTIVE:
                blind_root = plaintext
        if active is None or blind_root is None:
            raise KeyUnavailable(
                f"organization {organization_id} has no active data keys "
                "(never created, or crypto-shredded)"
            )
        return OrganizationKeys(
            organization_id,
            encryption_keys=encryption,
            encryption_key_id=active,
            blind_root=blind_root,
            blind_index_bits=bits,
        )

    def invalidate(self, organization_id: UUID | None = None) -> None:
        """Drop cached keys of one organization (or all) from this process's memory."""
        with self._lock:
            if organization_id is None:
                self._cache.clear()
            else:
                for cache_key in [k for k in self._cache if k[0] == organization_id]:
                    del self._cache[cache_key]

    # KEK rotation -----------------------------------------------------------------------

    def rewrap_all(self, session: Session) -> int:
        """Re-wrap every data key not wrapped by the current KEK; return how many.

        KEK rotation touches only `data_key` rows: the data keys themselves, and so every
        ciphertext, stay the same. Run it in a system session (it spans organizations).
        """
        current = self.provider.current_kek_id()
        rows = session.scalars(
            select(DataKey).where(DataKey.kek_id != current).order_by(DataKey.id)
        ).all()
        table = DATA_KEY_TABLE
        for row in rows:
            associated = wrap_associated_data(row.organization_id, row.id, row.purpose)
            plaintext = self.provider.unwrap(
                row.kek_id, row.wrapped_key, associated_data=associated
            )
            kek_id, wrapped = self.provider.wrap(plaintext, associated_data=associated)
            # Conditional on the old KEK: a concurrent re-wrap is not undone.
            session.execute(
                update(table)
                .where(table.c.id == row.id, table.c.kek_id == row.kek_id)
                .values(kek_id=kek_id, wrapped_key=wrapped)
            )
        return len(rows)

    def kek_ids_in_use(self, session: Session) -> set[str]:
        """KEK ids still wrapping some data key: none of them may be removed."""
        return set(session.scalars(select(DataKey.kek_id).distinct()))
