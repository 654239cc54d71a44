"""Application errors. Every message is safe to show: it never contains PHI."""

from __future__ import annotations


class AppError(Exception):
    """Base error carrying an HTTP status and a CLI exit code."""

    status_code: int = 400
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(AppError):
    """The caller gave something malformed (exit code 2)."""

    status_code = 400
    exit_code = 2


class NotFound(AppError):
    status_code = 404
    exit_code = 1


class Conflict(AppError):
    """The request clashes with the current state (a cancelled plan cancelled again)."""

    status_code = 409
    exit_code = 1


class Forbidden(AppError):
    status_code = 403
    exit_code = 1


class ConfigurationError(AppError):
    """Settings, data directory or key material are missing or unsafe (exit code 1)."""

    status_code = 500
    exit_code = 1


class DatabaseUnavailable(AppError):
    status_code = 503
    exit_code = 1
