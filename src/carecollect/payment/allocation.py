"""Pure allocation arithmetic: which charges a payment pays, and which a reversal un-pays.

Receivables convention (and ARCHITECTURE.md section 8): oldest charge first, unless the
staff member names charges and amounts, or a plan names the charges it covers (those go
first, then the rest oldest first).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from carecollect.errors import BadInput


@dataclass(frozen=True, slots=True)
class OpenCharge:
    entry_id: uuid.UUID
    posted_at: datetime
    open_cents: int


def allocate(
    open_charges: Sequence[OpenCharge],
    amount_cents: int,
    *,
    explicit: dict[uuid.UUID, int] | None = None,
    prefer: Sequence[uuid.UUID] = (),
) -> list[tuple[uuid.UUID, int]]:
    """Split `amount_cents` over open charges. Whatever exceeds every open charge stays
    unallocated (a credit on the account), so the result may sum to less than the amount."""
    by_id = {c.entry_id: c for c in open_charges}
    remaining = {c.entry_id: c.open_cents for c in open_charges}
    out: dict[uuid.UUID, int] = {}
    left = amount_cents
    if explicit:
        for entry_id, cents in explicit.items():
            if entry_id not in by_id:
                raise BadInput("an allocation names a charge that is not open on this account")
            if type(cents) is not int or cents <= 0:  # bool and float refused too
                raise BadInput("each allocation must be a positive whole number of cents")
            if cents > remaining[entry_id]:
                raise BadInput("an allocation is more than what is open on that charge")
            out[entry_id] = cents
            remaining[entry_id] -= cents
            left -= cents
        if left < 0:
            raise BadInput("the allocations add up to more than the payment")
    preferred = [by_id[i] for i in prefer if i in by_id]
    rest = sorted((c for c in open_charges if c.entry_id not in set(prefer)),
                  key=lambda c: (c.posted_at, c.entry_id))
    for charge in [*sorted(preferred, key=lambda c: (c.posted_at, c.entry_id)), *rest]:
        if left <= 0:
            break
        take = min(left, remaining[charge.entry_id])
        if take > 0:
            out[charge.entry_id] = out.get(charge.entry_id, 0) + take
            remaining[charge.entry_id] -= take
            left -= take
    return list(out.items())


def unallocate(
    allocations: Sequence[tuple[uuid.UUID, datetime, int]],
    unallocated_cents: int,
    amount_cents: int,
) -> list[tuple[uuid.UUID, int]]:
    """Reverse `amount_cents` of a payment: first from its unallocated credit, then from
    the charges it paid, newest charge first (the oldest debt stays paid longest).
    `allocations` are (charge id, charge posted_at, net cents still allocated)."""
    left = amount_cents - min(max(unallocated_cents, 0), amount_cents)
    out: list[tuple[uuid.UUID, int]] = []
    for entry_id, _posted_at, cents in sorted(allocations, key=lambda a: (a[1], a[0]),
                                              reverse=True):
        if left <= 0:
            break
        take = min(left, cents)
        if take > 0:
            out.append((entry_id, -take))
            left -= take
    return out
