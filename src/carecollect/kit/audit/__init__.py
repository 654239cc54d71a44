"""Audit-log cryptography with no business rules: canonical event bytes, RFC 6962 Merkle
tree hashing and proofs, the hash chain, C2SP signed checkpoints and the streaming
verifier."""
