"""Blind indexes: equality search over encrypted fields without decrypting them.

A blind index is HMAC-SHA256 of the *normalized* value under a per-index key, truncated to
a planned number of bits and stored as a BIGINT. Truncation is deliberate: with fewer bits
than rows, several rows share each index value, so the index cannot tell who is who by
itself; a lookup returns candidates that are decrypted and filtered.

Sizing follows CipherSweet's rule (docs/CRYPTO.md, "Blind-index sizing"): with R planned
rows and an L-bit index, the expected number of rows sharing a value is C = R / 2^L and it
must stay between 2 and sqrt(R). We take the largest such L, the fewest false positives
that still keep at least two coincidences: ``L = floor(log2(R / 2))``. For the default
1,000,000 planned patients that is 18 bits (C = 3.81; the safe range is 10..18 bits).

Per-index keys are derived once from the organization's blind-index root with HKDF, so an
index value for phones cannot be compared with one for e-mail addresses, and no two
organizations share index values.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carecollect.errors import BadInput

__all__ = [
    "INDEX_NAMES",
    "BlindIndexer",
    "normalize_account_number",
    "normalize_date",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "plan_bits",
]

INDEX_NAMES = ("phone", "email", "account_number", "name_dob")
MAX_BITS = 63  # stored as signed 64-bit BIGINT: non-negative values need at most 63 bits
_INDEX_INFO = b"carecollect/blind-index/v1\x00"
_HKDF_SALT = b"carecollect blind index salt v1"

# NANP (+1) numbers written the usual ways: the hot path of a bulk import. The area code
# and exchange start with 2-9 (NANP numbering plan); everything else goes to phonenumbers.
_NANP = re.compile(
    r"\s*(?:\+?1[\s.\-]*)?\(?([2-9]\d{2})\)?[\s.\-]*([2-9]\d{2})[\s.\-]*(\d{4})\s*"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_ACCOUNT_SEPARATORS = re.compile(r"[\s\-]+")
# ASCII names (the common case) skip Unicode normalization, which is the identity there.
_ASCII_NON_LETTERS = {c: None for c in range(128) if not chr(c).isalpha()}


def plan_bits(planned_rows: int) -> int:
    """Blind-index width for `planned_rows` rows by CipherSweet's rule.

    C = R / 2^L expected rows per index value must satisfy 2 <= C <= sqrt(R). The largest
    such L is floor(log2(R / 2)) = bit_length(R) - 2 (exact integer arithmetic); then
    2 <= C < 4 <= sqrt(R) for every R >= 16. Below 16 rows no width satisfies the rule
    for every R (5 rows: 1 bit gives C = 2.5 > sqrt(5)), so smaller plans are refused.
    1,000,000 rows -> 18 bits; 50,000 -> 14; 100 -> 5.
    """
    if planned_rows < 16:
        raise ValueError("a blind index needs at least 16 planned rows")
    return min(planned_rows.bit_length() - 2, MAX_BITS)


# Normalizations -------------------------------------------------------------------------
# Equal inputs written differently must give the same index, or a lookup misses. Every
# error names the kind of value only, never the value (it is PHI).


def normalize_phone(value: str, *, region: str = "US") -> str:
    """E.164 (``+15551234567``). National numbers are read in `region` (default US)."""
    if not isinstance(value, str):
        raise BadInput("phone number must be text")
    if (  # already E.164 NANP (what the services store): no regex, no parsing
        len(value) == 12
        and value.startswith("+1")
        and value[2:].isdigit()
        and value[2] >= "2"
        and value[5] >= "2"
    ):
        return value
    match = _NANP.fullmatch(value) if region == "US" else None
    if match is not None:
        return "+1" + match.group(1) + match.group(2) + match.group(3)
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise BadInput("phone number is not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadInput("phone number has an impossible length for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """Trimmed and lower-cased; must look like ``local@domain``."""
    if not isinstance(value, str):
        raise BadInput("e-mail address must be text")
    normalized = unicodedata.normalize("NFKC", value).strip().lower()
    if _EMAIL.fullmatch(normalized) is None:
        raise BadInput("e-mail address is not an e-mail address")
    return normalized


def normalize_name(value: str) -> str:
    """NFKC, case-folded, letters only: "O'Brien-Smith" and "obrien smith" are equal."""
    if not isinstance(value, str):
        raise BadInput("name must be text")
    if value.isascii():
        letters = value.lower().translate(_ASCII_NON_LETTERS)
    else:
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
        letters = "".join(ch for ch in folded if ch.isalpha())
    if not letters:
        raise BadInput("name has no letters")
    return letters


def normalize_date(value: date | str) -> str:
    """ISO 8601 calendar date ``YYYY-MM-DD`` from a `date` or an ISO string."""
    if isinstance(value, datetime):
        # A timestamp's calendar date depends on its zone; the caller must choose.
        raise BadInput("date must be a calendar date, not a timestamp")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _ISO_DATE.fullmatch(text) is not None:
            try:
                date.fromisoformat(text)  # validates; YYYY-MM-DD is already ISO
            except ValueError:
                pass
            else:
                return text
        raise BadInput("date is not a valid YYYY-MM-DD date")
    raise BadInput("date must be a date or YYYY-MM-DD text")


def normalize_account_number(value: str) -> str:
    """NFKC, spaces and hyphens removed, upper-cased."""
    if not isinstance(value, str):
        raise BadInput("account number must be text")
    normalized = _ACCOUNT_SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    if not normalized or not normalized.isalnum():
        raise BadInput("account number must be letters and digits")
    return normalized


# Index computation ----------------------------------------------------------------------


def derive_index_key(root_key: bytes, index_name: str) -> bytes:
    """The 256-bit HMAC key of one named index under an organization's root."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_HKDF_SALT,
        info=_INDEX_INFO + index_name.encode("utf-8"),
    ).derive(root_key)


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the padded-key states hashed once.

    Same output as `hmac.digest(key, message, "sha256")` (a known-answer test checks it)
    at half the cost: the two key blocks are not re-hashed for every value.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\x00") if len(key) <= 64 else hashlib.sha256(key).digest()
        block = block.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class BlindIndexer:
    """Computes one organization's blind indexes; values are ints in [0, 2**bits)."""

    __slots__ = ("_keys", "_root", "_shift", "bits")

    def __init__(self, root_key: bytes, *, bits: int) -> None:
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"blind-index width must be 1..{MAX_BITS} bits")
        self.bits = bits
        self._shift = 64 - bits
        self._root = root_key
        self._keys = {name: _HmacSha256(derive_index_key(root_key, name)) for name in INDEX_NAMES}

    def __repr__(self) -> str:
        return f"<BlindIndexer bits={self.bits}>"

    def value(self, index_name: str, normalized: str) -> int:
        """Index value of an already-normalized string for any named index."""
        mac = self._keys.get(index_name)
        if mac is None:
            mac = self._keys.setdefault(
                index_name, _HmacSha256(derive_index_key(self._root, index_name))
            )
        return int.from_bytes(mac.digest(normalized.encode("utf-8"))[:8], "big") >> self._shift

    def phone(self, value: str) -> int:
        return self.value("phone", normalize_phone(value))

    def email(self, value: str) -> int:
        return self.value("email", normalize_email(value))

    def account_number(self, value: str) -> int:
        return self.value("account_number", normalize_account_number(value))

    def name_dob(self, last_name: str, date_of_birth: date | str) -> int:
        """Compound index of last name and date of birth (names hold letters only, so the
        separator cannot be forged by a name)."""
        return self.value(
            "name_dob", normalize_name(last_name) + "|" + normalize_date(date_of_birth)
        )
