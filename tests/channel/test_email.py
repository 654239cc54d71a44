"""E-mail over SMTP to an aiosmtpd server on loopback: headers and STARTTLS policy."""

from __future__ import annotations

import uuid

import pytest

from carecollect.channel.base import ChannelRefused, NotSent, OutboundMessage
from carecollect.channel.email import SmtpConfig, SmtpEmail, is_loopback
from carecollect.db import Database
from tests.channel.fakes import smtp_server
from tests.channel.world import BASE, make_worker, make_world, plan, smtp_provider


def test_dispatched_email_has_neutral_headers_and_one_click_opt_out(db: Database) -> None:
    world = make_world(db, 1)
    debtor = world.debtors[0]
    with smtp_server() as (controller, inbox):
        attempt = plan(world, debtor, "email", "e-1")
        make_worker(world, {"email": smtp_provider(controller.port)}).drain()
    [(mail_from, rcpt, msg)] = inbox.messages
    assert (mail_from, rcpt) == ("billing@example.org", [debtor.email])
    # No PHI in Subject or From: the neutral billing name only (RULES.md §8).
    assert msg["From"] == "Lakeside Billing <billing@example.org>"
    assert msg["Subject"] == "A message from Lakeside Billing"
    for header in ("From", "Subject"):
        for phi in ("Robin", "Test0", "Lakeside Dental", "$", "balance", "past due"):
            assert phi not in msg[header]
    unsubscribe = msg["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://carecollect.localhost/hooks/email/unsubscribe/")
    assert str(attempt.hex) in unsubscribe
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
             if not p.is_multipart()}
    assert sorted(parts) == ["text/html", "text/plain"]
    assert "To stop receiving these e-mails, use this link: https://" in parts["text/plain"]
    assert "<a href=\"https://carecollect.localhost/hooks/email/unsubscribe/" in parts[
        "text/html"]
    assert msg["Message-ID"].endswith("@carecollect.invalid>")


def _message() -> OutboundMessage:
    return OutboundMessage(attempt_id=uuid.uuid4(), organization_id=uuid.uuid4(),
                           idempotency_key="k", channel="email", to="person@example.org",
                           from_name="Lakeside Billing", subject="A message",
                           text_body="hello", html_body="<p>hello</p>",
                           list_unsubscribe_url="https://example.org/u/" + "a" * 32)


def test_plain_smtp_is_refused_unless_an_allowed_loopback_relay() -> None:
    with smtp_server() as (controller, inbox):
        strict = SmtpEmail(SmtpConfig(host="127.0.0.1", port=controller.port, timeout=5))
        with pytest.raises(ChannelRefused) as refused:
            strict.send(_message())
        assert refused.value.code == "smtp_starttls_unavailable"
        assert inbox.messages == []
        relaxed = SmtpEmail(SmtpConfig(host="127.0.0.1", port=controller.port, timeout=5,
                                       allow_plain_loopback=True))
        assert relaxed.send(_message()).provider == "smtp"
        assert len(inbox.messages) == 1
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("smtp.example.org")
    assert not is_loopback("10.0.0.1")


def test_relay_refusals_are_classified() -> None:
    with smtp_server() as (controller, inbox):
        provider = SmtpEmail(SmtpConfig(host="127.0.0.1", port=controller.port, timeout=5,
                                        allow_plain_loopback=True))
        inbox.fail_next = [451, 554]
        with pytest.raises(NotSent) as temporary:
            provider.send(_message())
        assert (temporary.value.code, temporary.value.retryable) == ("smtp_data_451", True)
        with pytest.raises(NotSent) as permanent:
            provider.send(_message())
        assert (permanent.value.code, permanent.value.retryable) == ("smtp_data_554", False)
    with pytest.raises(NotSent) as down:
        SmtpEmail(SmtpConfig(host="127.0.0.1", port=9, timeout=1,
                             allow_plain_loopback=True)).send(_message())
    assert (down.value.code, down.value.retryable) == ("smtp_connect_failed", True)


def test_email_without_opt_out_is_never_sent() -> None:
    message = OutboundMessage(attempt_id=uuid.uuid4(), organization_id=uuid.uuid4(),
                              idempotency_key="k", channel="email", to="p@example.org",
                              from_name="X", text_body="a", html_body="<p>a</p>")
    with pytest.raises(NotSent) as refused:
        SmtpEmail(SmtpConfig(host="127.0.0.1", allow_plain_loopback=True)).send(message)
    assert refused.value.code == "email_opt_out_missing"


def test_one_click_unsubscribe_revokes_email_at_once(db: Database) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from carecollect.channel.webhooks import make_router
    from carecollect.outreach.dispatch import unsubscribe_token
    from carecollect.outreach.outbox import OutreachAttempt

    world = make_world(db, 1)
    debtor = world.debtors[0]
    app = FastAPI()
    app.include_router(make_router(None, public_base_url="https://carecollect.localhost", db=db,
                                   keys=world.tenant.manager, link_secret=b"k" * 32,
                                   clock=lambda: BASE))
    client = TestClient(app)
    with smtp_server() as (controller, inbox):
        first = plan(world, debtor, "email", "e-1")
        make_worker(world, {"email": smtp_provider(controller.port)}).drain()
        assert len(inbox.messages) == 1
        url = inbox.messages[0][2]["List-Unsubscribe"].strip("<>")
        path = url.removeprefix("https://carecollect.localhost")
        assert path == f"/hooks/email/unsubscribe/{unsubscribe_token(b'k' * 32, first)}"
        assert client.get(path).status_code == 200  # a GET shows a button, changes nothing
        assert client.post(path.replace(path[-4:], "0000")).status_code == 404
        assert client.post(path).status_code == 200
        second = plan(world, debtor, "email", "e-2")
        make_worker(world, {"email": smtp_provider(controller.port)}).drain()
        assert len(inbox.messages) == 1
    with db.system_session() as session:
        row = session.get(OutreachAttempt, second)
        assert row is not None
        assert row.state == "blocked"
        assert "REGF-MEDIUM-OPTOUT" in row.reasons
