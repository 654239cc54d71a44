"""Errors of the ingest pipeline. Every message names a row, a field or a kind of problem,
never a value from the file (it may be PHI)."""

from __future__ import annotations

from dataclasses import dataclass

from carecollect.errors import AppError, BadInput


class IngestError(BadInput):
    """The file is not what it claims to be, or cannot be read at all (exit code 2).

    The one documented error type of every parser: the fuzz tests assert that nothing
    else escapes them. Nothing of the file is stored when it is raised before the first
    batch; batches already committed stay committed and a re-run resumes idempotently.
    """


class BaaRequiredError(AppError):
    """PHI may not be accepted yet: no business associate agreement with the operator.

    HIPAA 45 CFR 164.502(e), 164.504(e) (RULES.md HIPAA-BAA): a business associate that
    hosts PHI for a covered entity needs a BAA first; exit code 1, nothing stored.
    """

    status_code = 403
    exit_code = 1


@dataclass(frozen=True, slots=True)
class RowError:
    """One invalid row: where (1-based row or record number), which field, why.

    The reason never quotes the value; the error report file the user asks for may
    still be PHI-bearing because row numbers point into their file, so it is written only
    where the user asks (`--error-report`).
    """

    row: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


class FieldError(Exception):
    """Raised inside a row's conversion; the pipeline turns it into a `RowError`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
