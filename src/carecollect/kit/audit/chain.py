"""The hash chain over the log: `chain[n] = SHA-256(chain[n-1] || leaf[n])`, starting
from 32 zero bytes. The Merkle tree already binds every leaf to its position; the chain
adds a per-entry running digest, so an edit is located at the first entry whose stored
chain value disagrees even when no checkpoint covers it yet."""

from __future__ import annotations

import hashlib

CHAIN_START = bytes(32)


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()
