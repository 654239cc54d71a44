"""Field encryption: ciphertext layout (known answer), AAD binding, failing closed."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carecollect.kit.crypto.fields import DecryptionError, FieldCipher, KeyUnavailable
from carecollect.kit.crypto.types import Sealed

ORG = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057")
OTHER_ORG = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8058")
ROW = uuid.UUID("01890a5d-ac96-7000-8000-000000000001")
OTHER_ROW = uuid.UUID("01890a5d-ac96-7000-8000-000000000002")
KEY_ID = 0x0A0B0C0D
DATA_KEY = bytes(range(32))
NONCE = bytes(range(100, 112))


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(ORG, {KEY_ID: DATA_KEY}, KEY_ID)


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "urandom", lambda n: NONCE)


def test_ciphertext_layout_known_answer(cipher: FieldCipher, fixed_nonce: None) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    assert sealed is not None
    data = sealed.ciphertext
    # Rebuilt from the written specification (docs/CRYPTO.md), not from the module.
    subkey = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"carecollect field subkey salt v1",
        info=b"carecollect/field/v1\x00patient\x00last_name",
    ).derive(DATA_KEY)
    header = bytes([0x01, 0x01, 0x0A, 0x0B, 0x0C, 0x0D])
    aad = header + ORG.bytes + ROW.bytes + b"patient\x00last_name"
    expected = header + NONCE + AESGCM(subkey).encrypt(NONCE, b"Testperson", aad)
    assert data == expected
    assert data[:6] == header
    assert data[6:18] == NONCE
    assert len(data) == 6 + 12 + len("Testperson") + 16
    assert sealed.key_id == KEY_ID
    # Pinned bytes: any change of derivation, AAD or layout breaks stored data.
    assert data.hex() == (
        "01010a0b0c0d6465666768696a6b6c6d6e6f"  # header, nonce
        "dad9a24abfd282ca9919"  # ciphertext
        "0a1060f16b7728caebb971d2e9552ebf"  # tag
    )


def test_round_trip(cipher: FieldCipher) -> None:
    for value in ["Testperson", "", "Zoë Ñúñez-O'Brien 李", "x" * 5000]:
        sealed = cipher.seal("patient", "first_name", ROW, value)
        assert cipher.open(sealed, "patient", "first_name", ROW) == value
    assert cipher.seal("patient", "first_name", ROW, None) is None
    assert cipher.open(None, "patient", "first_name", ROW) is None


def test_nonces_are_fresh(cipher: FieldCipher) -> None:
    sealed = [cipher.seal("patient", "last_name", ROW, "Testperson") for _ in range(1000)]
    nonces = {s.ciphertext[6:18] for s in sealed if s is not None}
    assert len(nonces) == 1000


def test_sealed_is_redacted(cipher: FieldCipher) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    assert repr(sealed) == "<sealed>"
    assert str(sealed) == "<sealed>"
    assert f"{ {'last_name': sealed} }" == "{'last_name': <sealed>}"


@pytest.mark.parametrize(
    ("table", "column", "row_id", "org"),
    [
        ("patient", "last_name", OTHER_ROW, ORG),  # copied to another row
        ("patient", "first_name", ROW, ORG),  # copied to another column
        ("guarantor", "last_name", ROW, ORG),  # copied to another table
        ("patient", "last_name", ROW, OTHER_ORG),  # same key material, other organization
    ],
)
def test_value_moved_elsewhere_does_not_decrypt(
    cipher: FieldCipher, table: str, column: str, row_id: uuid.UUID, org: uuid.UUID
) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    elsewhere = FieldCipher(org, {KEY_ID: DATA_KEY}, KEY_ID)
    with pytest.raises(DecryptionError) as caught:
        elsewhere.open(sealed, table, column, row_id)
    assert type(caught.value) is DecryptionError
    assert caught.value.message == (
        f"cannot decrypt {table}.{column}: the value does not belong to this row, "
        "column or organization, or it was altered"
    )
    assert "Testperson" not in str(caught.value)


def test_tampering_fails(cipher: FieldCipher) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    assert sealed is not None
    data = bytearray(sealed.ciphertext)
    for position in (6, 18, len(data) - 1):  # nonce, body, tag
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.open(Sealed(bytes(flipped)), "patient", "last_name", ROW)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x01" + bytes(31),  # one byte too short
        b"\x02\x01" + bytes(40),  # unknown format version
        b"\x01\x07" + bytes(40),  # unknown algorithm
    ],
)
def test_unknown_format(cipher: FieldCipher, data: bytes) -> None:
    with pytest.raises(DecryptionError) as caught:
        cipher.open(data, "patient", "last_name", ROW)
    assert caught.value.message == "cannot decrypt patient.last_name: unknown ciphertext format"


def test_missing_key_fails_closed(cipher: FieldCipher) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    other_key = FieldCipher(ORG, {KEY_ID + 1: DATA_KEY}, KEY_ID + 1)
    with pytest.raises(KeyUnavailable) as caught:
        other_key.open(sealed, "patient", "last_name", ROW)
    assert caught.value.message == (
        f"cannot decrypt patient.last_name: data key {KEY_ID} is not available to "
        "this organization (retired, shredded or foreign)"
    )
    assert isinstance(caught.value, DecryptionError)


def test_wrong_key_material_fails_closed(cipher: FieldCipher) -> None:
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    wrong = FieldCipher(ORG, {KEY_ID: bytes(32)}, KEY_ID)
    with pytest.raises(DecryptionError):
        wrong.open(sealed, "patient", "last_name", ROW)


def test_no_active_key_cannot_seal() -> None:
    decrypt_only = FieldCipher(ORG, {KEY_ID: DATA_KEY}, None)
    with pytest.raises(KeyUnavailable) as caught:
        decrypt_only.seal("patient", "last_name", ROW, "Testperson")
    assert caught.value.message == (
        "cannot encrypt patient.last_name: the organization has no active data key"
    )


def test_old_keys_still_open(cipher: FieldCipher) -> None:
    old = cipher.seal("patient", "last_name", ROW, "Testperson")
    rotated = FieldCipher(ORG, {KEY_ID: DATA_KEY, 7: bytes(32)}, 7)
    new = rotated.seal("patient", "last_name", ROW, "Testperson")
    assert new is not None
    assert new.key_id == 7
    assert rotated.open(old, "patient", "last_name", ROW) == "Testperson"
    assert rotated.open(new, "patient", "last_name", ROW) == "Testperson"


def test_seal_many(cipher: FieldCipher) -> None:
    rows = [uuid.UUID(int=i) for i in range(1, 6)]
    values = ["a", None, "Testperson", "", "d"]
    sealed = cipher.seal_many("patient", "last_name", rows, values)
    assert [s is None for s in sealed] == [False, True, False, False, False]
    opened = [
        cipher.open(s, "patient", "last_name", r) for r, s in zip(rows, sealed, strict=True)
    ]
    assert opened == values
    nonces = {s[6:18] for s in sealed if s is not None}
    assert len(nonces) == 4
    assert cipher.open_many("patient", "last_name", zip(rows, sealed, strict=True)) == values
    with pytest.raises(ValueError, match="differ in length"):
        cipher.seal_many("patient", "last_name", rows, values[:2])


def test_open_row(cipher: FieldCipher) -> None:
    row = SimpleNamespace(__tablename__="patient", id=ROW, last_name=None)
    row.last_name = cipher.seal("patient", "last_name", ROW, "Testperson")
    assert cipher.open_row(row, "last_name") == "Testperson"


def test_bad_names_refused(cipher: FieldCipher) -> None:
    with pytest.raises(ValueError, match="non-empty names"):
        cipher.seal("patient", "", ROW, "x")
    with pytest.raises(ValueError, match="non-empty names"):
        cipher.seal("pat\x00ient", "last_name", ROW, "x")


def test_repr_has_no_key_material(cipher: FieldCipher) -> None:
    assert repr(cipher) == f"<FieldCipher organization={ORG} active_key={KEY_ID}>"
