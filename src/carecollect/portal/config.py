"""Portal settings from the environment (`CARECOLLECT_PORTAL_*`).

Variables: LINK_TTL_DAYS, MAX_FAILURES (lockout threshold per link), LOCKOUT_MINUTES,
LINK_ATTEMPTS_PER_WINDOW, ADDRESS_ATTEMPTS_PER_WINDOW, WINDOW_MINUTES, IDLE_MINUTES,
ABSOLUTE_MINUTES, PUBLIC_BASE_URL (the origin payment links are built with).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    """Limits of the identity check and the patient session.

    The defaults follow NIST SP 800-63B section 5.2.2 (throttle online guessing: a small
    number of consecutive failures per link before lockout) and OWASP's session guidance
    (short idle timeout for a sensitive application, a hard absolute limit).
    """

    model_config = SettingsConfigDict(env_prefix="CARECOLLECT_PORTAL_", extra="ignore")

    link_ttl_days: int = 30
    max_failures: int = 5
    lockout_minutes: int = 30
    link_attempts_per_window: int = 10
    address_attempts_per_window: int = 20
    window_minutes: int = 15
    idle_minutes: int = 15
    absolute_minutes: int = 60
    public_base_url: str = ""

    @property
    def link_ttl(self) -> timedelta:
        return timedelta(days=self.link_ttl_days)

    @property
    def lockout(self) -> timedelta:
        return timedelta(minutes=self.lockout_minutes)

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    @property
    def idle_timeout(self) -> timedelta:
        return timedelta(minutes=self.idle_minutes)

    @property
    def absolute_timeout(self) -> timedelta:
        return timedelta(minutes=self.absolute_minutes)
