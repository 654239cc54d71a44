"""The audit signing key: created by `carecollect init`, kept outside the database.

The private key file (mode 0600, in a 0700 directory) holds one line in the signed-note
signer encoding; the public verifier key is written next to it as `<name>.pub` so an
auditor can be handed it. The key name is also the checkpoint origin.
"""

from __future__ import annotations

import os
from pathlib import Path

from carecollect.errors import ConfigurationError
from carecollect.kit.audit.checkpoint import CheckpointError, Signer, Verifier

ORIGIN_PREFIX = "carecollect.local/audit/"


def public_key_path(private_path: Path) -> Path:
    return private_path.with_suffix(".pub")


def create_signing_key(path: Path) -> Verifier:
    """Create a new Ed25519 audit signing key at `path` (0600) and its `.pub` file.

    Refuses to overwrite an existing key: replacing it would make every existing
    checkpoint unverifiable with the new public key.
    """
    if path.exists():
        raise ConfigurationError(f"audit signing key {path} already exists; not overwriting")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The log's name carries a random part so two installations never share an origin.
    signer = Signer.generate(ORIGIN_PREFIX + os.urandom(8).hex())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(signer.encode() + "\n")
    public_key_path(path).write_text(signer.verifier.encode() + "\n", encoding="ascii")
    return signer.verifier


def load_signer(path: Path) -> Signer:
    if not path.is_file():
        raise ConfigurationError(
            f"audit signing key {path} is missing (run `carecollect init` to create it)"
        )
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"audit signing key {path} is readable by group or others")
    try:
        return Signer.parse(path.read_text(encoding="ascii"))
    except (CheckpointError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"audit signing key {path} is unreadable: {exc}") from None


def load_verifier(path: Path) -> Verifier:
    """Read a public key file (the verifier encoding)."""
    try:
        return Verifier.parse(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise ConfigurationError(f"public key file {path} does not exist") from None
    except (CheckpointError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"public key file {path} is not a valid key: {exc}") from None


def default_verifier(private_path: Path) -> Verifier:
    """The log's public key: from `.pub` next to the signing key, else derived from it."""
    pub = public_key_path(private_path)
    if pub.is_file():
        return load_verifier(pub)
    return load_signer(private_path).verifier
