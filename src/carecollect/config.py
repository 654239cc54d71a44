"""Settings: one `Settings` object from `CARECOLLECT_*` variables and an optional TOML file.

Precedence (highest first): explicit arguments, environment variables, the data
directory's `carecollect.toml`, defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from carecollect.errors import ConfigurationError

CONFIG_FILE_NAME = "carecollect.toml"
DEFAULT_DATA_DIR = Path("carecollect-data")


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `carecollect.toml` from the data directory, if there is one."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                self._values = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"configuration file {path} is not valid TOML: {exc}"
                ) from None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARECOLLECT_", extra="forbid")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    environment: Literal["development", "production"] = "development"
    debug: bool = False
    # Key provider for the key-encryption key: "local" (keyring file in the data
    # directory), "env" (CARECOLLECT_KEK_BASE64) or a plug-in name from the
    # `carecollect.key_providers` entry-point group.
    key_provider: str = "local"
    kek_base64: SecretStr | None = None
    keyring_path: Path | None = None
    audit_signing_key_path: Path | None = None
    checkpoint_dir: Path | None = None
    # The PostgreSQL role application sessions switch to; it must not own the tables so
    # that row-level security applies (ARCHITECTURE.md section 3).
    database_app_role: str = "carecollect_app"
    # Planned patient population, used to size blind indexes (CipherSweet's rule).
    planned_patients: int = Field(default=1_000_000, ge=100)
    key_cache_ttl_seconds: int = Field(default=300, ge=0)
    tls_enabled: bool = False
    session_secret: SecretStr = SecretStr("change-me")
    # Payments (docs/PAYMENTS.md): the sandbox processor for demos and tests, or Stripe.
    payment_processor: Literal["sandbox", "stripe"] = "sandbox"
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        data_dir = os.environ.get("CARECOLLECT_DATA_DIR")
        init_dir = getattr(init_settings, "init_kwargs", {}).get("data_dir")
        chosen = Path(init_dir or data_dir or DEFAULT_DATA_DIR)
        return (init_settings, env_settings, _TomlSource(settings_cls, chosen / CONFIG_FILE_NAME))

    # Derived paths -------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'carecollect.db').resolve()}"

    @property
    def resolved_keyring_path(self) -> Path:
        return self.keyring_path or self.data_dir / "keys" / "keyring.json"

    @property
    def resolved_audit_signing_key_path(self) -> Path:
        return self.audit_signing_key_path or self.data_dir / "keys" / "audit-signing.key"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe for production (empty when fine)."""
        problems: list[str] = []
        if self.debug:
            problems.append("debug is on")
        if not self.tls_enabled:
            problems.append("TLS is off (set CARECOLLECT_TLS_ENABLED after configuring TLS)")
        if self.session_secret.get_secret_value() in {"change-me", ""}:
            problems.append("the session secret is the default")
        if self.key_provider == "local":
            path = self.resolved_keyring_path
            if path.exists() and (path.stat().st_mode & 0o077):
                problems.append(f"keyring file {path} is readable by group or others")
        if self.payment_processor == "sandbox":
            # The sandbox's webhook secret is public: anyone could post a payment.
            problems.append("the sandbox payment processor is configured")
        url = self.resolved_database_url
        if (
            url.startswith("postgresql")
            and "sslmode=require" not in url
            and ("sslmode=verify" not in url)
        ):
            problems.append("the PostgreSQL URL does not require TLS (sslmode=require)")
        return problems


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation problems into one clear ConfigurationError."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(f"invalid configuration: {where}: {first['msg']}") from None
    if settings.environment == "production":
        problems = settings.production_problems()
        if problems:
            raise ConfigurationError("refusing to run in production: " + "; ".join(problems))
    return settings
