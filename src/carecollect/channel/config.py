"""Channel configuration from the environment (`CARECOLLECT_*`), for `carecollect worker`
and the in-process worker of `carecollect serve`.

Variables: SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM,
SMTP_ALLOW_PLAIN_LOOPBACK; TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER,
TWILIO_MESSAGING_SERVICE_SID, TWILIO_BASE_URL; MAIL_HOUSE_DIR; PUBLIC_BASE_URL;
LINK_SECRET (base64, 32 bytes); CALLBACK_PHONE; CONTACT_PERSON; POLICY_PROFILE;
RATE_SMS, RATE_EMAIL (messages per second per worker). A channel whose variables are missing
is simply not configured: its attempts fail with `channel_not_configured`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from carecollect.channel.base import Provider


class ChannelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARECOLLECT_", extra="ignore")

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "billing@localhost"
    smtp_allow_plain_loopback: bool = False
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = None
    mail_house_dir: Path | None = None
    public_base_url: str = "https://carecollect.localhost"
    link_secret: str | None = None
    callback_phone: str = "+1 617 555 0100"
    contact_person: str = "the billing office"
    policy_profile: str = "strict"
    rate_sms: float = 10.0
    rate_email: float = 20.0


def build_channels(settings: ChannelSettings) -> dict[str, Provider]:
    channels: dict[str, Provider] = {}
    if settings.smtp_host:
        from carecollect.channel.email import SmtpConfig, SmtpEmail

        channels["email"] = SmtpEmail(SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, from_address=settings.smtp_from,
            username=settings.smtp_username, password=settings.smtp_password,
            allow_plain_loopback=settings.smtp_allow_plain_loopback))
    if settings.twilio_account_sid and settings.twilio_auth_token:
        from carecollect.channel.sms import TwilioConfig, TwilioSms

        channels["sms"] = TwilioSms(TwilioConfig(
            account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_base_url, callback_base_url=settings.public_base_url))
    if settings.mail_house_dir:
        from carecollect.channel.letters import LetterSpool

        channels["letter"] = LetterSpool(settings.mail_house_dir)
    return channels


def build_resources(settings: ChannelSettings | None = None) -> dict[str, Any]:
    """The worker's `resources` for the outreach handlers."""
    from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
    from carecollect.outreach.ratelimit import RateLimiter

    settings = settings or ChannelSettings()
    dispatch = DispatchSettings(profile=settings.policy_profile,
                                public_base_url=settings.public_base_url,
                                callback_phone=settings.callback_phone,
                                contact_person=settings.contact_person)
    if settings.link_secret:
        dispatch.link_secret = base64.b64decode(settings.link_secret)
    limiter = RateLimiter({"sms": settings.rate_sms, "email": settings.rate_email})
    return {"outreach": DispatchResources(channels=build_channels(settings), settings=dispatch,
                                          limiter=limiter)}
