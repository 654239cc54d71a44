"""Blind indexes: sizing (CipherSweet's rule), normalizations, HMAC known answers."""

from __future__ import annotations

import hmac
import math
from datetime import UTC, date, datetime

import phonenumbers
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import BadInput
from carecollect.kit.crypto.blind import (
    MAX_BITS,
    BlindIndexer,
    _HmacSha256,
    normalize_account_number,
    normalize_date,
    normalize_email,
    normalize_name,
    normalize_phone,
    plan_bits,
)

ROOT = bytes(range(32, 64))


@pytest.mark.parametrize(
    ("rows", "bits"),
    [(1_000_000, 18), (50_000, 14), (10_000, 12), (100, 5), (16, 3), (2**70, MAX_BITS)],
)
def test_plan_bits(rows: int, bits: int) -> None:
    assert plan_bits(rows) == bits


def test_plan_bits_for_the_default_population() -> None:
    # Worked example of docs/CRYPTO.md: 1,000,000 rows, sqrt = 1000.
    bits = plan_bits(1_000_000)
    coincidences = 1_000_000 / 2**bits
    assert coincidences == pytest.approx(3.814697265625)
    assert 2 <= coincidences <= math.sqrt(1_000_000)
    assert 1_000_000 / 2 ** (bits + 1) < 2  # one more bit would leave fewer than 2
    assert 1_000_000 / 2**10 <= 1000 < 1_000_000 / 2**9  # the safe range starts at 10


def test_plan_bits_refuses_tiny_populations() -> None:
    with pytest.raises(ValueError, match="at least 16 planned rows"):
        plan_bits(15)


@given(st.integers(min_value=16, max_value=10**12))
def test_plan_bits_obeys_the_rule(rows: int) -> None:
    bits = plan_bits(rows)
    coincidences = rows / 2**bits
    assert 2 <= coincidences <= math.sqrt(rows)
    assert rows / 2 ** (bits + 1) < 2  # the largest width inside the rule


def test_hmac_rfc4231_case_2() -> None:
    mac = _HmacSha256(b"Jefe").digest(b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@given(st.binary(min_size=0, max_size=100), st.binary(max_size=200))
def test_hmac_matches_the_standard_library(key: bytes, message: bytes) -> None:
    assert _HmacSha256(key).digest(message) == hmac.digest(key, message, "sha256")


def test_index_value_known_answer() -> None:
    indexer = BlindIndexer(ROOT, bits=18)
    # Rebuilt from docs/CRYPTO.md: HKDF per-index key, HMAC-SHA256, top 18 bits.
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"carecollect blind index salt v1",
        info=b"carecollect/blind-index/v1\x00phone",
    ).derive(ROOT)
    digest = hmac.digest(key, b"+12125550123", "sha256")
    expected = int.from_bytes(digest[:8], "big") >> (64 - 18)
    assert indexer.phone("(212) 555-0123") == expected
    assert indexer.phone("(212) 555-0123") == 31832  # pinned: stored indexes depend on it


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(212) 555-0123", "+12125550123"),
        ("212-555-0123", "+12125550123"),
        ("212.555.0123", "+12125550123"),
        ("2125550123", "+12125550123"),
        ("1 212 555 0123", "+12125550123"),
        ("+1 (212) 555-0123", "+12125550123"),
        ("+12125550123", "+12125550123"),
        ("+12125550123 ", "+12125550123"),
        ("+11235550123", "+11235550123"),  # not NANP-shaped: left to phonenumbers
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 212 555 0123 ext. 4", "+12125550123"),
    ],
)
def test_normalize_phone(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("call me", "phone number is not a phone number"),
        ("12", "phone number has an impossible length for its country"),
    ],
)
def test_normalize_phone_errors_name_no_value(raw: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        normalize_phone(raw)
    assert caught.value.message == message


@settings(max_examples=300)
@given(
    st.sampled_from(["", "1", "+1", "+1 ", "1-"]),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
    st.sampled_from(["{a}{b}{c}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a} {b} {c}"]),
)
def test_fast_phone_path_agrees_with_phonenumbers(
    prefix: str, area: int, exchange: int, line: int, shape: str
) -> None:
    text = prefix + shape.format(a=area, b=exchange, c=f"{line:04d}")
    parsed = phonenumbers.parse(text, "US")
    assert normalize_phone(text) == phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    )


def test_normalize_email() -> None:
    assert normalize_email("  Robin.Testperson@Example.COM ") == "robin.testperson@example.com"
    for bad in ["no-at-sign", "two@@example.com", "a b@example.com", "@example.com"]:
        with pytest.raises(BadInput) as caught:
            normalize_email(bad)
        assert caught.value.message == "e-mail address is not an e-mail address"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("O'Brien", "obrien"),
        ("  o brien ", "obrien"),
        ("Smith-Jones", "smithjones"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # case folding, not lower-casing
        ("Zoë", "zoë"),
        ("Zoe\u0308", "zoë"),  # combining diaeresis composes under NFKC
        ("\uff34\uff25\uff33\uff34", "test"),  # full-width TEST folds under NFKC
        ("Nguyễn", "nguyễn"),
    ],
)
def test_normalize_name(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


def test_normalize_name_without_letters() -> None:
    with pytest.raises(BadInput) as caught:
        normalize_name(" - ' 42")
    assert caught.value.message == "name has no letters"


def test_normalize_date() -> None:
    assert normalize_date(date(1980, 5, 17)) == "1980-05-17"
    assert normalize_date(" 1980-05-17 ") == "1980-05-17"
    for bad in ["1980-02-30", "05/17/1980", "19800517", "1980-5-17"]:
        with pytest.raises(BadInput) as caught:
            normalize_date(bad)
        assert caught.value.message == "date is not a valid YYYY-MM-DD date"
    with pytest.raises(BadInput) as timestamp:
        normalize_date(datetime(1980, 5, 17, tzinfo=UTC))
    assert timestamp.value.message == "date must be a calendar date, not a timestamp"


def test_normalize_account_number() -> None:
    assert normalize_account_number(" ab-1234 5678 ") == "AB12345678"
    with pytest.raises(BadInput) as caught:
        normalize_account_number("12/34")
    assert caught.value.message == "account number must be letters and digits"


def test_equivalent_inputs_share_an_index() -> None:
    indexer = BlindIndexer(ROOT, bits=18)
    assert indexer.phone("(212) 555-0123") == indexer.phone("+1 212 555 0123")
    assert indexer.email("Robin@Example.com") == indexer.email("robin@example.com ")
    assert indexer.account_number("AB-12") == indexer.account_number("ab12")
    assert indexer.name_dob("O'Brien", date(1980, 5, 17)) == indexer.name_dob(
        "obrien", "1980-05-17"
    )
    assert indexer.name_dob("O'Brien", "1980-05-17") != indexer.name_dob("O'Brien", "1980-05-18")


def test_indexes_are_separated() -> None:
    indexer = BlindIndexer(ROOT, bits=63)
    values = {indexer.value(name, "robin") for name in ("phone", "email", "account_number")}
    assert len(values) == 3  # per-index keys: values of one index say nothing of another
    other_org = BlindIndexer(bytes(32), bits=63)
    assert other_org.value("phone", "robin") != indexer.value("phone", "robin")
    assert indexer.value("mrn", "robin") == indexer.value("mrn", "robin")  # ad-hoc index


@given(st.integers(1, MAX_BITS), st.text(min_size=1, max_size=30))
def test_values_fit_the_planned_width(bits: int, text: str) -> None:
    value = BlindIndexer(ROOT, bits=bits).value("phone", text)
    assert 0 <= value < 2**bits <= 2**63 - 1 + 1  # fits a signed 64-bit BIGINT


def test_truncation_spreads_values() -> None:
    indexer = BlindIndexer(ROOT, bits=4)
    buckets = {indexer.value("email", f"user{i}@example.com") for i in range(200)}
    assert buckets == set(range(16))


def test_width_is_validated() -> None:
    with pytest.raises(ValueError, match=r"1\.\.63 bits"):
        BlindIndexer(ROOT, bits=64)
    assert repr(BlindIndexer(ROOT, bits=18)) == "<BlindIndexer bits=18>"
