"""Errors of the crypto kit. Messages name tables, columns and key ids, never PHI or keys."""

from __future__ import annotations

from carecollect.errors import AppError


class DecryptionError(AppError):
    """A ciphertext does not decrypt here: moved to another row, column or organization,
    altered, or in an unknown format. Fails closed; the message names table and column only.
    """

    status_code = 500
    exit_code = 1


class KeyUnavailable(DecryptionError):
    """A needed key is missing, retired, shredded, or cannot be unwrapped. Fails closed."""

    status_code = 503
    exit_code = 1
