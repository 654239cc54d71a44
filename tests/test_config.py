"""Settings: production mode refuses every insecure setting it knows of, naming each."""

from __future__ import annotations

from pathlib import Path

import pytest

from carecollect.config import Settings, load_settings
from carecollect.errors import ConfigurationError


def test_development_defaults_list_their_production_problems(tmp_path: Path) -> None:
    problems = Settings(data_dir=tmp_path).production_problems()
    assert problems == [
        "TLS is off (set CARECOLLECT_TLS_ENABLED after configuring TLS)",
        "the session secret is the default",
        "the sandbox payment processor is configured",
    ]


def test_production_refuses_sandbox_payments_and_plain_postgres(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(
            data_dir=tmp_path, environment="production", tls_enabled=True,
            session_secret="a-long-random-secret-value",
            database_url="postgresql+psycopg://app@db.internal/cc",
        )
    message = refused.value.message
    assert "the sandbox payment processor is configured" in message
    assert "does not require TLS" in message


def test_a_secure_production_configuration_loads(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, environment="production", tls_enabled=True,
        session_secret="a-long-random-secret-value", payment_processor="stripe",
        database_url="postgresql+psycopg://app@db.internal/cc?sslmode=require",
    )
    assert settings.production_problems() == []
