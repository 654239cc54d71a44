"""Signed checkpoints in the C2SP `tlog-checkpoint` format, as Ed25519 signed notes.

A checkpoint body (c2sp.org/tlog-checkpoint) is three lines::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>

wrapped in a signed note (c2sp.org/signed-note): the body, an empty line, then one line
per signature, `— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>`. The
key id is the first four bytes of SHA-256(name || "\\n" || 0x01 || public key), exactly
as golang.org/x/mod/sumdb/note computes it, so standard tooling can check our
checkpoints. Keys use that package's text encodings::

    verifier: <name>+<key id hex>+<base64(0x01 || public key)>
    signer:   PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || private seed)>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
_NAME_RE = re.compile(r"^[^\s+]+$")
_SIZE_RE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class CheckpointError(ValueError):
    """A checkpoint or key is malformed, or a signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def encode(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        # The base64 key may itself contain '+': split off the first two fields only.
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _NAME_RE.match(parts[0]):
            raise CheckpointError("public key is not in the form name+keyid+base64")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise CheckpointError("public key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("public key is not an Ed25519 key")
        verifier = cls(name, raw[1:])
        if verifier.key_id != wanted_id:
            raise CheckpointError("public key id does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not _NAME_RE.match(name):
            raise CheckpointError("key name may not contain spaces or '+'")
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, _public_bytes(self.private_key.public_key()))

    def encode(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _NAME_RE.match(parts[2]):
            raise CheckpointError("signing key is not in the form PRIVATE+KEY+name+id+base64")
        try:
            raw = base64.b64decode(parts[4], validate=True)
            wanted_id = bytes.fromhex(parts[3])
        except (binascii.Error, ValueError):
            raise CheckpointError("signing key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("signing key is not an Ed25519 key")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id != wanted_id:
            raise CheckpointError("signing key id does not match its name and key")
        return signer

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"

    def sign(self, signer: Signer) -> str:
        """The signed note text of this checkpoint."""
        body = self.body()
        signature = signer.verifier.key_id + signer.sign(body.encode())
        return f"{body}\n{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(signature).decode()}\n"


def parse_body(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("checkpoint body must have origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin or origin.strip() != origin:
        raise CheckpointError("checkpoint origin line is empty or padded")
    if not _SIZE_RE.match(size_text):
        raise CheckpointError("checkpoint tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("checkpoint root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """Parse a signed checkpoint note and check its signature by `verifier`.

    Raises CheckpointError naming what is wrong: malformed note, no signature by this
    key, a bad signature, or an origin that is not the key's log.
    """
    body, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise CheckpointError("checkpoint is not a signed note (no signature block)")
    body += "\n"
    checkpoint = parse_body(body)
    found = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("checkpoint signature line is malformed")
        name, _, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("checkpoint signature is not base64") from None
        if len(raw) < 5:
            raise CheckpointError("checkpoint signature is too short")
        if name != verifier.name or raw[:4] != verifier.key_id:
            continue
        found = True
        if len(raw) != 68 or not verifier.verify(body.encode(), raw[4:]):
            raise CheckpointError("checkpoint signature does not verify with the public key")
    if not found:
        raise CheckpointError("checkpoint is not signed by the given public key")
    if checkpoint.origin != verifier.name:
        raise CheckpointError("checkpoint origin is not the log named by the public key")
    return checkpoint
