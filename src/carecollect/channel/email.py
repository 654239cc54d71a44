"""E-mail over SMTP (ARCHITECTURE.md §3; RULES.md HIPAA-SEC-TRANSMISSION).

* STARTTLS is required; the only exception is an explicitly allowed relay on a loopback
  address (a development relay such as a local Postfix or the test server).
* Messages are multipart/alternative (text + HTML), From shows only the organization's
  neutral billing display name (PLAT-NEUTRAL-NAME), and carry `List-Unsubscribe` with an
  https link plus `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which is
  also the Reg F 1006.6(e) opt-out for e-mail.
* The Message-ID is derived from the attempt's idempotency key, so a duplicate (which
  SMTP cannot prevent) is at least recognisable downstream.

SMTP has no way to ask "did you get message X?": an ambiguous failure during DATA leaves
the attempt `unknown` until a bounce or delivery event resolves it (`lookup` returns None).
"""

from __future__ import annotations

import hashlib
import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from carecollect.channel.base import (
    Ambiguous,
    ChannelRefused,
    NotSent,
    OutboundMessage,
    SendResult,
    SentRecord,
)

# CRLF line ends (RFC 5321) and no RFC 2047 encoding of long URL headers.
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class SmtpConfig:
    host: str
    port: int = 587
    from_address: str = "billing@localhost"
    username: str | None = None
    password: str | None = None
    # Plain SMTP is accepted only for a loopback relay and only when this is True.
    allow_plain_loopback: bool = False
    timeout: float = 30.0
    message_id_domain: str = "carecollect.invalid"
    ssl_context: ssl.SSLContext | None = None


def message_id(idempotency_key: str, domain: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_email(message: OutboundMessage, config: SmtpConfig) -> EmailMessage:
    if not message.text_body or not message.html_body:
        raise NotSent("email_body_missing", retryable=False)
    if not message.list_unsubscribe_url:
        # REGF-EOPTOUT: every e-mail carries a one-click opt-out.
        raise NotSent("email_opt_out_missing", retryable=False)
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = formataddr((message.from_name, config.from_address))
    msg["To"] = message.to
    msg["Subject"] = message.subject or message.from_name
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(message.idempotency_key, config.message_id_domain)
    unsubscribe = f"<{message.list_unsubscribe_url}>"
    if message.list_unsubscribe_mailto:
        unsubscribe += f", <mailto:{message.list_unsubscribe_mailto}>"
    msg["List-Unsubscribe"] = unsubscribe
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(message.text_body)
    msg.add_alternative(message.html_body, subtype="html")
    # Attachments (the monthly insights PDF): (filename, "type/subtype", bytes) triples in
    # `extra["attachments"]`; the message becomes multipart/mixed around the alternative.
    for filename, content_type, data in message.extra.get("attachments", ()):
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


class SmtpEmail:
    name = "smtp"
    service: str | None = "email"
    honours_idempotency = False

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except (OSError, smtplib.SMTPException):
            raise NotSent("smtp_connect_failed", retryable=True) from None
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=cfg.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            elif not (cfg.allow_plain_loopback and is_loopback(cfg.host)):
                smtp.close()
                # HIPAA-SEC-TRANSMISSION: never hand PHI to a relay in clear text.
                raise ChannelRefused("smtp_starttls_unavailable")
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password)
        except ChannelRefused:
            raise
        except smtplib.SMTPAuthenticationError:
            smtp.close()
            raise NotSent("smtp_auth_failed", retryable=False) from None
        except (OSError, smtplib.SMTPException, ssl.SSLError):
            smtp.close()
            raise NotSent("smtp_handshake_failed", retryable=True) from None
        return smtp

    def send(self, message: OutboundMessage) -> SendResult:
        email = build_email(message, self.config)
        smtp = self._connect()
        try:
            # Envelope phase: a refusal here means nothing was accepted.
            try:
                code, _ = smtp.mail(self.config.from_address)
                if code != 250:
                    raise NotSent(f"smtp_mail_{code}", retryable=400 <= code < 500)
                code, _ = smtp.rcpt(message.to)
                if code not in (250, 251):
                    raise NotSent(f"smtp_rcpt_{code}", retryable=400 <= code < 500)
            except (OSError, smtplib.SMTPServerDisconnected):
                raise NotSent("smtp_envelope_failed", retryable=True) from None
            # DATA phase: once the body is on the wire the relay may have queued it even
            # if we never see its answer.
            try:
                code, _ = smtp.data(email.as_bytes())
            except smtplib.SMTPDataError as exc:
                raise NotSent(f"smtp_data_{exc.smtp_code}",
                              retryable=400 <= exc.smtp_code < 500) from None
            except (TimeoutError, OSError, smtplib.SMTPServerDisconnected):
                raise Ambiguous("smtp_data_no_answer") from None
            if code != 250:
                raise NotSent(f"smtp_data_{code}", retryable=400 <= code < 500)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return SendResult(self.name, email["Message-ID"].strip("<>"), "accepted")

    def lookup(self, record: SentRecord) -> SendResult | bool | None:
        return None
