"""The in-memory and column types of an encrypted field.

An encrypted column loads as a `Sealed` value: ciphertext bytes with a redacted `repr` and
`str`, so a field someone forgot to decrypt serializes as ``<sealed>`` and never as
plaintext. Plaintext is only obtained through an explicit decrypt call that knows the row
(see `carecollect.kit.crypto.fields`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect


class Sealed:
    """Ciphertext of one PHI field. Opaque: comparing or printing it reveals nothing."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: bytes) -> None:
        self.ciphertext = bytes(ciphertext)

    def __repr__(self) -> str:
        return "<sealed>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)

    @property
    def key_id(self) -> int:
        """The data-key id in the ciphertext header (bytes 2..6, big-endian)."""
        return int.from_bytes(self.ciphertext[2:6], "big")


class SealedType(TypeDecorator[Sealed]):
    """Column type for encrypted PHI: BLOB on SQLite, BYTEA on PostgreSQL."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.ciphertext
        raise TypeError("encrypted columns accept only Sealed values, never plaintext")

    def process_result_value(self, value: Any, dialect: Dialect) -> Sealed | None:
        if value is None:
            return None
        return Sealed(bytes(value))
