from __future__ import annotations

import datetime as dt

import pytest

from carecollect.outreach.templates import (
    Conditions,
    SurfaceContext,
    Template,
    TemplateRefused,
    default_templates,
    is_opaque_url,
    lint,
    render,
    template_ids,
)

PAY = "https://pay.example.org/t/" + "Zx9" * 8
OPT = "https://pay.example.org/u/" + "Qw7" * 8


def _rules(template: Template) -> list[tuple[str, str]]:
    return [(i.surface, i.rule) for i in lint(template)]


def test_balance_in_sms_for_unverified_number_is_refused() -> None:
    template = Template("t", "en", "sms", "", {
        "sms_body": "{{ practice_name }}: you owe {{ balance_cents | money }} {{ payment_url }}"})
    assert _rules(template) == [("sms_body", "HIPAA-CONTENT-CLASS")]
    verified = Template("t", "en", "sms", "", template.surfaces,
                        requires=Conditions(phone_verified_and_consented=True))
    assert lint(verified) == []


def test_service_description_in_email_subject_is_refused() -> None:
    template = Template("t", "en", "email", "", {
        "email_subject": "About your {{ service_description }}",
        "from_name": "{{ practice_name }}",
        "email_body": "{{ practice_name }} {{ payment_url }}",
    })
    issues = lint(template)
    assert [(i.surface, i.rule) for i in issues] == [("email_subject", "HIPAA-CONTENT-CLASS")]
    assert issues[0].message == "service_description is C2; email_subject allows up to C0"


@pytest.mark.parametrize("name", ["balance_cents", "patient_first_name", "account_last4",
                                  "date_of_service", "service_description"])
def test_phi_in_url_is_refused(name: str) -> None:
    template = Template("t", "en", "sms", "", {
        "sms_body": "{{ practice_name }} {{ payment_url }}",
        "url": "https://pay.example.org/{{ " + name + " }}",
    })
    assert ("url", "HIPAA-CONTENT-CLASS") in _rules(template)


def test_opaque_token_url_is_accepted() -> None:
    template = Template("t", "en", "sms", "", {
        "sms_body": "{{ practice_name }} {{ payment_url }}",
        "url": "https://pay.example.org/t/{{ payment_token }}",
    })
    assert lint(template) == []


def test_literal_words_and_missing_neutral_name_and_untyped_variables() -> None:
    template = Template("t", "en", "email", "", {
        "email_subject": "Past due balance",
        "from_name": "Collections Dept",
        "email_body": "Hi {{ nickname }}",
    })
    assert _rules(template) == [
        ("email_subject", "HIPAA-CONTENT-CLASS"),
        ("email_subject", "HIPAA-CONTENT-CLASS"),
        ("from_name", "HIPAA-CONTENT-CLASS"),
        ("from_name", "PLAT-NEUTRAL-NAME"),
        ("email_body", "TEMPLATE-UNTYPED"),
        ("email_body", "PLAT-NEUTRAL-NAME"),
    ]


def test_voicemail_must_be_limited_content() -> None:
    template = Template("t", "en", "voicemail", "", {
        "voicemail": "{{ practice_name }} about your bill of {{ balance_cents | money }}, "
                     "call {{ callback_phone }}"})
    assert _rules(template) == [
        ("voicemail", "HIPAA-CONTENT-CLASS"), ("voicemail", "REGF-LCM"),
        ("voicemail", "REGF-LCM")]


def test_c2_in_email_body_only_when_risk_acknowledged() -> None:
    surfaces = {"email_subject": "Your statement is ready", "from_name": "{{ practice_name }}",
                "email_body": "{{ practice_name }}: {{ service_description }}"}
    assert _rules(Template("t", "en", "email", "", surfaces)) == [
        ("email_body", "HIPAA-CONTENT-CLASS")]
    acknowledged = Template("t", "en", "email", "", surfaces,
                            requires=Conditions(email_risk_acknowledged=True))
    assert lint(acknowledged) == []


def test_default_set_is_clean_in_english_and_spanish() -> None:
    templates = default_templates()
    assert template_ids() == ["balance_reminder_sms", "callback_voicemail", "reminder_email",
                              "statement_email", "statement_letter", "statement_ready_sms"]
    for template_id in template_ids():
        assert (template_id, "en") in templates
        assert (template_id, "es") in templates
    assert all(lint(t) == [] for t in templates.values())


def test_render_sms_appends_opt_out_and_uses_neutral_name() -> None:
    rendered = render("statement_ready_sms", SurfaceContext(
        channel="sms", display_name="Lakeside Billing", variables={"payment_url": PAY}))
    assert rendered.sms_body == (
        f"Lakeside Billing: you have a new message about your account. View it securely: "
        f"{PAY} Reply STOP to opt out.")
    assert rendered.from_name == "Lakeside Billing"
    assert rendered.includes_opt_out is True
    assert rendered.contains == ("payment_link_opaque", "practice_name_neutral")
    spanish = render("statement_ready_sms", SurfaceContext(
        channel="sms", display_name="Lakeside Billing", language="es",
        variables={"payment_url": PAY}))
    assert spanish.sms_body is not None
    assert spanish.sms_body.endswith("Responda STOP para no recibir más textos.")


def test_render_refuses_balance_sms_to_unverified_number() -> None:
    ctx = SurfaceContext(channel="sms", display_name="Lakeside Billing",
                         variables={"payment_url": PAY, "balance_cents": 12_345})
    with pytest.raises(TemplateRefused, match="HIPAA-CONTENT-CLASS"):
        render("balance_reminder_sms", ctx)
    ok = render("balance_reminder_sms", SurfaceContext(
        channel="sms", display_name="Lakeside Billing", phone_verified_and_consented=True,
        variables={"payment_url": PAY, "balance_cents": 12_345}))
    assert ok.sms_body == (
        f"Lakeside Billing: a balance of $123.45 is ready for you to review. Pay or set up a "
        f"plan that works for you: {PAY} Reply STOP to opt out.")


def test_render_email_has_neutral_headers_and_opt_out() -> None:
    rendered = render("statement_email", SurfaceContext(
        channel="email", display_name="Lakeside Billing", opt_out_url=OPT, variables={
            "statement_date": dt.date(2026, 11, 1), "balance_cents": 84_500,
            "payment_url": PAY, "callback_phone": "+1 617 555 0100"}))
    assert rendered.subject == "Your statement is ready"
    assert rendered.from_name == "Lakeside Billing"
    assert rendered.preheader == "A message from Lakeside Billing"
    assert rendered.text_body is not None
    assert "The amount due is $845.00." in rendered.text_body
    assert rendered.text_body.endswith(
        f"To stop receiving these e-mails, use this link: {OPT}")
    assert rendered.html_body is not None
    assert f'<a href="{OPT}">' in rendered.html_body
    assert rendered.list_unsubscribe_url == OPT
    assert rendered.content_classes == {"email_subject": "C0", "from_name": "C0",
                                        "preheader": "C0", "email_body": "C1"}


def test_render_email_refuses_without_opaque_opt_out_link() -> None:
    ctx = SurfaceContext(channel="email", display_name="X Billing", opt_out_url=None,
                         variables={"payment_url": PAY, "callback_phone": "6175550100"})
    with pytest.raises(TemplateRefused, match="REGF-EOPTOUT"):
        render("reminder_email", ctx)


def test_render_escapes_html_and_type_checks_values() -> None:
    rendered = render("reminder_email", SurfaceContext(
        channel="email", display_name="A&B <Billing>", opt_out_url=OPT,
        variables={"payment_url": PAY, "callback_phone": "6175550100"}))
    assert rendered.html_body is not None
    assert "A&amp;B &lt;Billing&gt;" in rendered.html_body
    with pytest.raises(TemplateRefused, match="balance_cents is not a valid money"):
        render("balance_reminder_sms", SurfaceContext(
            channel="sms", display_name="X", phone_verified_and_consented=True,
            variables={"payment_url": PAY, "balance_cents": "12.34"}))
    with pytest.raises(TemplateRefused, match="payment_url is not a valid url"):
        render("statement_ready_sms", SurfaceContext(
            channel="sms", display_name="X",
            variables={"payment_url": "https://pay.example.org/pay?acct=123456"}))


def test_voicemail_is_tagged_limited_content() -> None:
    rendered = render("callback_voicemail", SurfaceContext(
        channel="voicemail", display_name="Lakeside Billing",
        variables={"contact_person": "Jordan", "callback_phone": "+1 617 555 0100"}))
    assert rendered.voicemail == ("Hello, this is Jordan from Lakeside Billing. Please call us "
                                  "back at +1 617 555 0100. Thank you.")
    assert rendered.contains == ("lcm_required_only", "practice_name_neutral")


def test_letter_carries_service_detail_inside_only() -> None:
    rendered = render("statement_letter", SurfaceContext(
        channel="letter", display_name="Lakeside Billing", variables={
            "statement_date": dt.date(2026, 11, 1), "account_last4": "4321",
            "date_of_service": dt.date(2026, 9, 3), "service_description": "Crown",
            "balance_cents": 84_500, "payment_url": PAY, "callback_phone": "6175550100"}))
    assert rendered.envelope == "Lakeside Billing"
    assert rendered.letter_body is not None
    assert "Service on 2026-09-03: Crown" in rendered.letter_body
    assert rendered.content_classes == {"envelope": "C0", "letter_body": "C2"}


def test_sandbox_blocks_attribute_escape() -> None:
    template = Template("t", "en", "sms", "", {
        "sms_body": "{{ practice_name.__class__.__mro__ }} {{ payment_url }}"})
    assert lint(template) == []  # only known variables; the sandbox guards attributes
    from jinja2.exceptions import SecurityError

    from carecollect.outreach import templates as module

    with pytest.raises(SecurityError):
        module._TEXT_ENV.from_string("{{ x.__class__.__subclasses__() }}").render(x="")


def test_opaque_url_check() -> None:
    assert is_opaque_url(PAY) is True
    assert is_opaque_url("http://pay.example.org/t/" + "a" * 30) is False
    assert is_opaque_url("https://pay.example.org/t/short") is False
