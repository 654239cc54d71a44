"""Storage of the Merkle tree hashes in packed runs.

Appending leaves creates tree hashes at consecutive stored-hash positions (see
`kit.audit.merkle`), so an integration batch produces one contiguous run of positions.
It is stored as rows of up to CHUNK hashes, each row keyed by its first position and
holding the 32-byte hashes concatenated, split at multiples of CHUNK. About one row per
thousand hashes (plus one at each batch boundary) instead of one row per hash is what
lets the integrator keep up (bench/audit.py); a proof still reads O(log n) rows of at
most 32 KiB.
"""

from __future__ import annotations

from sqlalchemy import Connection

CHUNK = 1024
HASH_SIZE = 32


def pack(created: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Rows (first position, concatenated hashes) for a contiguous run of new hashes."""
    if not created:
        return []
    created.sort()
    first = created[0][0]
    if created[-1][0] != first + len(created) - 1:
        raise ValueError("tree hashes to store are not a contiguous run of positions")
    rows = []
    start = 0
    while start < len(created):
        position = first + start
        end = min(len(created), start + CHUNK - position % CHUNK)
        rows.append((position, b"".join(h for _, h in created[start:end])))
        start = end
    return rows


def read_positions(conn: Connection, positions: list[int]) -> dict[int, bytes]:
    """The stored hashes at `positions` (missing ones are simply absent)."""
    found: dict[int, bytes] = {}
    row_start, row_blob = -1, b""
    for position in sorted(set(positions), reverse=True):
        offset = (position - row_start) * HASH_SIZE
        if not (row_start >= 0 and 0 <= offset < len(row_blob)):
            row = conn.exec_driver_sql(
                "SELECT position, hashes FROM audit_tree_hash "  # noqa: S608 (an int)
                f"WHERE position <= {int(position)} ORDER BY position DESC LIMIT 1"
            ).first()
            if row is None:
                continue
            row_start, row_blob = int(row[0]), bytes(row[1])
            offset = (position - row_start) * HASH_SIZE
        if 0 <= offset < len(row_blob):
            found[position] = row_blob[offset:offset + HASH_SIZE]
    return found


def read_range(conn: Connection, first: int, end: int) -> list[tuple[int, bytes]]:
    """The stored hashes at positions [first, end), in order (gaps simply absent)."""
    rows = conn.exec_driver_sql(
        "SELECT position, hashes FROM audit_tree_hash WHERE position >= "  # noqa: S608
        f"COALESCE((SELECT max(position) FROM audit_tree_hash WHERE position <= {int(first)}), 0)"
        f" AND position < {int(end)} ORDER BY position"
    ).all()
    result: list[tuple[int, bytes]] = []
    for start, blob in rows:
        blob = bytes(blob)
        for i in range(len(blob) // HASH_SIZE):
            position = int(start) + i
            if first <= position < end:
                result.append((position, blob[i * HASH_SIZE:(i + 1) * HASH_SIZE]))
    return result
