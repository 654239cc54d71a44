"""Field encryption: AES-256-GCM under per-field subkeys, bound to the row that holds it.

Ciphertext layout (docs/CRYPTO.md, "Ciphertext format")::

    offset  size  field
    0       1     format version      0x01
    1       1     algorithm           0x01 = AES-256-GCM, HKDF-SHA256 per-field subkey
    2       4     data-key id         big-endian, the `data_key.id` that encrypted it
    6       12    nonce               random (os.urandom)
    18      n     ciphertext          UTF-8 plaintext, encrypted
    18+n    16    GCM tag

The subkey is HKDF-SHA256(data key, info = "carecollect/field/v1" 0x00 table 0x00 column),
so each column has its own key and the random-nonce budget (2^32 messages per key,
NIST SP 800-38D section 8.3) is per column, not per organization. The associated data is
the 6-byte header, the organization id (16 bytes), the row id (16 bytes) and
``table 0x00 column``: a value copied to another row, column or organization does not
decrypt, and nobody can relabel the key id in the header.

Speed matters (bulk import encrypts millions of fields), so one `AESGCM` object per
(key id, table, column) is built once and reused; a seal is then one `os.urandom(12)` and
one AES-GCM call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carecollect.kit.crypto.errors import DecryptionError, KeyUnavailable
from carecollect.kit.crypto.types import Sealed

__all__ = [
    "ALGORITHM_AES256GCM",
    "FORMAT_VERSION",
    "OVERHEAD",
    "DecryptionError",
    "FieldCipher",
    "KeyUnavailable",
    "derive_field_key",
]

FORMAT_VERSION = 1
ALGORITHM_AES256GCM = 1
HEADER_BYTES = 6
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES  # 34 bytes per sealed value
_BODY = HEADER_BYTES + NONCE_BYTES
_FIELD_INFO = b"carecollect/field/v1\x00"
_HKDF_SALT = b"carecollect field subkey salt v1"

# (AESGCM for the subkey, 6-byte header, AAD prefix = header + org id, AAD suffix)
_Sealer = tuple[AESGCM, bytes, bytes, bytes]


def _label(table: str, column: str) -> bytes:
    if not table or not column or "\x00" in table or "\x00" in column:
        raise ValueError("table and column must be non-empty names without NUL")
    return table.encode("utf-8") + b"\x00" + column.encode("utf-8")


def derive_field_key(data_key: bytes, table: str, column: str) -> bytes:
    """The 256-bit subkey of one column under one data key (HKDF-SHA256, RFC 5869)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_HKDF_SALT,
        info=_FIELD_INFO + _label(table, column),
    ).derive(data_key)


class FieldCipher:
    """Seals and opens PHI fields of one organization with its current data keys.

    Built by `OrganizationKeys.cipher()`; it holds every key that may still decrypt
    (``active`` and ``decrypt_only``) and seals with the ``active`` one.
    """

    __slots__ = ("_keys", "_org_bytes", "_subkeys", "active_key_id", "organization_id")

    def __init__(
        self, organization_id: UUID, keys: Mapping[int, bytes], active_key_id: int | None
    ) -> None:
        if active_key_id is not None and active_key_id not in keys:
            raise ValueError("the active key must be one of the keys")
        self.organization_id = organization_id
        self.active_key_id = active_key_id
        self._keys = dict(keys)
        self._org_bytes = organization_id.bytes
        self._subkeys: dict[tuple[int, str, str], _Sealer] = {}

    def __repr__(self) -> str:
        return f"<FieldCipher organization={self.organization_id} active_key={self.active_key_id}>"

    @property
    def key_ids(self) -> frozenset[int]:
        return frozenset(self._keys)

    def _subkey(self, key_id: int, table: str, column: str) -> _Sealer:
        entry = self._subkeys.get((key_id, table, column))
        if entry is not None:
            return entry
        data_key = self._keys.get(key_id)
        if data_key is None:
            # Unknown here: retired, shredded, or another organization's key. Fail closed.
            raise KeyUnavailable(
                f"cannot decrypt {table}.{column}: data key {key_id} is not available to "
                "this organization (retired, shredded or foreign)"
            )
        header = bytes((FORMAT_VERSION, ALGORITHM_AES256GCM)) + key_id.to_bytes(4, "big")
        entry = (
            AESGCM(derive_field_key(data_key, table, column)),
            header,
            header + self._org_bytes,
            _label(table, column),
        )
        self._subkeys[(key_id, table, column)] = entry
        return entry

    def _active(self, table: str, column: str) -> _Sealer:
        if self.active_key_id is None:
            raise KeyUnavailable(
                f"cannot encrypt {table}.{column}: the organization has no active data key"
            )
        return self._subkey(self.active_key_id, table, column)

    def seal(self, table: str, column: str, row_id: UUID, value: str | None) -> Sealed | None:
        """Encrypt one value for `table.column` of row `row_id` (None stays None)."""
        if value is None:
            return None
        aead, header, head, tail = self._active(table, column)
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(
            header + nonce + aead.encrypt(nonce, value.encode("utf-8"), head + row_id.bytes + tail)
        )

    def seal_many(
        self,
        table: str,
        column: str,
        row_ids: Sequence[UUID],
        values: Sequence[str | None],
    ) -> list[bytes | None]:
        """Encrypt a column of values for bulk inserts; returns raw ciphertext bytes.

        Wrap each in `Sealed` for a `SealedType` column (no copy is made); the raw bytes
        suit a Core insert into a `LargeBinary` column or a COPY.
        """
        if len(row_ids) != len(values):
            raise ValueError("row_ids and values differ in length")
        aead, header, head, tail = self._active(table, column)
        nonces = os.urandom(NONCE_BYTES * len(values))
        encrypt = aead.encrypt
        out: list[bytes | None] = []
        append = out.append
        for index, (row_id, value) in enumerate(zip(row_ids, values, strict=True)):
            if value is None:
                append(None)
                continue
            nonce = nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES]
            aad = head + row_id.bytes + tail
            append(header + nonce + encrypt(nonce, value.encode("utf-8"), aad))
        return out

    def open(
        self, sealed: Sealed | bytes | None, table: str, column: str, row_id: UUID
    ) -> str | None:
        """Decrypt one value of `table.column` in row `row_id`; fails closed.

        Raises `DecryptionError` when the ciphertext belongs to another row, column or
        organization or was altered, and `KeyUnavailable` when its key is not here.
        """
        if sealed is None:
            return None
        data = sealed.ciphertext if isinstance(sealed, Sealed) else bytes(sealed)
        if (
            len(data) < OVERHEAD
            or data[0] != FORMAT_VERSION
            or data[1] != ALGORITHM_AES256GCM
        ):
            raise DecryptionError(f"cannot decrypt {table}.{column}: unknown ciphertext format")
        key_id = int.from_bytes(data[2:HEADER_BYTES], "big")
        aead, _header, head, tail = self._subkey(key_id, table, column)
        try:
            plaintext = aead.decrypt(
                data[HEADER_BYTES:_BODY], data[_BODY:], head + row_id.bytes + tail
            )
        except InvalidTag:
            raise DecryptionError(
                f"cannot decrypt {table}.{column}: the value does not belong to this row, "
                "column or organization, or it was altered"
            ) from None
        return plaintext.decode("utf-8")

    def open_row(self, row: Any, column: str) -> str | None:
        """Decrypt `column` of an ORM row, using its table name and id."""
        return self.open(getattr(row, column), row.__tablename__, column, row.id)

    def open_many(
        self,
        table: str,
        column: str,
        pairs: Iterable[tuple[UUID, Sealed | bytes | None]],
    ) -> list[str | None]:
        """Decrypt (row id, sealed) pairs of one column, in order."""
        return [self.open(sealed, table, column, row_id) for row_id, sealed in pairs]
