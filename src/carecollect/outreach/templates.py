"""PHI-safe message templates: typed variables, content classes per surface, a linter and
`render`.

Contract with the dispatcher (stable; the dispatcher calls only this)::

    from carecollect.outreach.templates import SurfaceContext, render, TemplateRefused

    rendered = render("balance_reminder_sms", SurfaceContext(
        channel="sms",                         # sms | email | voicemail | letter | call
        language="es",                         # falls back to "en" if no such translation
        display_name=org.billing_display_name, # PLAT-NEUTRAL-NAME, never the legal name
        variables={"balance_cents": 12_345, "payment_url": "https://pay.example/t/abc..."},
        phone_verified_and_consented=True,     # HIPAA-CONTENT-CLASS: C1 allowed in SMS
        email_risk_acknowledged=False,         # HIPAA-UNENCRYPTED-EMAIL: C2 in e-mail body
        opt_out_url="https://pay.example/u/<opaque token>",
    ))
    rendered.sms_body / .subject / .from_name / .preheader / .text_body / .html_body /
    .voicemail / .envelope / .letter_body / .list_unsubscribe_url / .contains (content tags
    for the compliance engine's `Content.contains`) / .includes_opt_out / .content_classes

`render` raises `TemplateRefused` (terminal, PHI-free message) when a variable's content
class may not appear on a surface under the given conditions, a variable is unknown or has
the wrong type, or a URL is not an opaque token. It never silently strips content: the
caller records a compliance block instead.

Content classes (RULES.md HIPAA-CONTENT-CLASS and section 8): C0 neutral, C1 billing
identifiers, C2 clinical. Surfaces and the classes they may carry:

* SMS body: C0; C1 only if the number is verified as the patient's and consented.
* E-mail subject, From name, preheader, voicemail, envelope, URL: C0 only.
* E-mail body (unencrypted): C0-C1; C2 only if the patient was warned and prefers e-mail.
* Letter body (inside a sealed envelope): C0-C2.

Every outward surface must name the organization's neutral billing display name
(`{{ practice_name }}`, filled from `display_name`, PLAT-NEUTRAL-NAME), and Reg F 1006.6(e)
opt-out text is appended to every e-mail and SMS by `render` itself (REGF-EOPTOUT), so no
template can forget it. Templates are TOML files in `template_files/`, one per template
and language; `lint_all()` runs at import of the default set in the tests and at
`load_templates`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import tomllib
from collections.abc import Iterable, Mapping
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2 import Template as Template_
from jinja2.sandbox import SandboxedEnvironment

from carecollect.errors import AppError

TEMPLATE_DIR = Path(__file__).resolve().parent / "template_files"
LANGUAGES = ("en", "es")


class ContentClass(IntEnum):
    C0 = 0  # neutral
    C1 = 1  # billing identifiers
    C2 = 2  # clinical / service details


SURFACES = (
    "sms_body", "email_subject", "from_name", "preheader", "email_body", "voicemail",
    "envelope", "letter_body", "url",
)
# Surfaces that reach the outside world and must carry the neutral name (PLAT-NEUTRAL-NAME).
NAMED_SURFACES = frozenset({"sms_body", "from_name", "email_body", "voicemail", "envelope",
                            "letter_body"})
CHANNEL_SURFACES: dict[str, tuple[str, ...]] = {
    "sms": ("sms_body",),
    "email": ("email_subject", "from_name", "preheader", "email_body"),
    "voicemail": ("voicemail",),
    "call": ("voicemail",),
    "letter": ("envelope", "letter_body"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Variable:
    """A typed template variable and the content class of what it reveals."""

    name: str
    kind: str  # text | money | date | url | phone | person
    content_class: ContentClass
    tag: str  # RULES.md §0.3 content tag, for the compliance engine


_C0, _C1, _C2 = ContentClass.C0, ContentClass.C1, ContentClass.C2
VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("practice_name", "text", _C0, "practice_name_neutral"),
    Variable("payment_url", "url", _C0, "payment_link_opaque"),
    Variable("portal_url", "url", _C0, "payment_link_opaque"),
    Variable("callback_phone", "phone", _C0, "neutral_notice"),
    Variable("contact_person", "person", _C0, "neutral_notice"),
    Variable("payment_token", "text", _C0, "payment_link_opaque"),
    Variable("patient_first_name", "text", _C1, "patient_first_name"),
    Variable("balance_cents", "money", _C1, "balance_amount"),
    Variable("statement_date", "date", _C1, "statement_date"),
    Variable("due_date", "date", _C1, "statement_date"),
    Variable("account_last4", "text", _C1, "account_last4"),
    Variable("date_of_service", "date", _C2, "date_of_service"),
    Variable("service_description", "text", _C2, "service_description"),
    Variable("procedure_code", "text", _C2, "procedure_or_cpt"),
    Variable("provider_specialty", "text", _C2, "provider_specialty"),
    Variable("diagnosis_code", "text", _C2, "diagnosis_or_icd"),
)}
# REGF-LCM (12 CFR 1006.2(j)): a voicemail may carry only these fields.
LCM_VARIABLES = frozenset({"practice_name", "contact_person", "callback_phone"})
# RULES.md §8 "Never" column, for literal template text on C0 surfaces.
FORBIDDEN_WORDS: dict[str, tuple[str, ...]] = {
    "email_subject": ("collection", "past due", "overdue", "balance", "debt", "$",
                      "cobro", "vencid", "saldo", "deuda"),
    "from_name": ("collection", "past due", "debt", "cobro", "deuda"),
    "preheader": ("collection", "past due", "overdue", "balance", "debt", "$",
                  "cobro", "vencid", "saldo", "deuda"),
    "voicemail": ("bill", "balance", "account", "debt", "collect", "past due",
                  "factura", "saldo", "cuenta", "deuda", "cobro"),
    "envelope": ("collection", "past due", "overdue", "debt", "cobro", "vencid", "deuda"),
    "sms_body": ("past due", "overdue", "collection", "vencid", "cobro"),
}
OPT_OUT_TEXT = {
    "sms": {"en": "Reply STOP to opt out.", "es": "Responda STOP para no recibir más textos."},
    "email": {
        "en": "To stop receiving these e-mails, use this link: {url}",
        "es": "Para dejar de recibir estos correos, use este enlace: {url}",
    },
}
_OPAQUE_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?/[A-Za-z0-9/_-]*?[A-Za-z0-9_-]{22,}$")


class TemplateRefused(AppError):  # noqa: N818 (house style: BadInput, NotFound)
    """A template or a render that would put content where it may not go."""

    status_code = 422
    exit_code = 2


@dataclasses.dataclass(frozen=True, slots=True)
class LintIssue:
    template_id: str
    language: str
    surface: str
    rule: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Conditions:
    """Facts that widen what a surface may carry (HIPAA-CONTENT-CLASS)."""

    phone_verified_and_consented: bool = False
    email_risk_acknowledged: bool = False


def allowed_class(surface: str, conditions: Conditions) -> ContentClass:
    """The highest content class `surface` may carry under `conditions`."""
    if surface == "sms_body":
        return _C1 if conditions.phone_verified_and_consented else _C0
    if surface == "email_body":
        return _C2 if conditions.email_risk_acknowledged else _C1
    if surface == "letter_body":
        return _C2
    return _C0


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    id: str
    language: str
    channel: str
    description: str
    surfaces: Mapping[str, str]
    # Conditions the template is written for; the linter checks under them and `render`
    # refuses when the actual context does not meet them.
    requires: Conditions = Conditions()


def _env(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape,
                               keep_trailing_newline=False)
    env.filters["money"] = _money
    env.filters["day"] = _day
    return env




def _money(cents: Any) -> str:
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TemplateRefused("money variables take integer cents")
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _day(value: Any) -> str:
    if not isinstance(value, dt.date):
        raise TemplateRefused("date variables take a date")
    return value.isoformat()


_TEXT_ENV = _env(autoescape=False)
_HTML_ENV = _env(autoescape=True)


def _variables_of(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(_TEXT_ENV.parse(source)))


def _literal_text(source: str) -> str:
    ast = _TEXT_ENV.parse(source)
    return " ".join(node.data for node in ast.find_all(nodes.TemplateData)).lower()


def lint(template: Template) -> list[LintIssue]:
    """Every reason `template` could leak content onto a surface that cannot carry it."""
    issues: list[LintIssue] = []

    def issue(surface: str, rule: str, message: str) -> None:
        issues.append(LintIssue(template.id, template.language, surface, rule, message))

    expected = set(CHANNEL_SURFACES.get(template.channel, ()))
    if not expected:
        issue("-", "TEMPLATE-CHANNEL", f"unknown channel {template.channel!r}")
    for surface, source in template.surfaces.items():
        if surface not in SURFACES:
            issue(surface, "TEMPLATE-SURFACE", "unknown surface")
            continue
        try:
            names = _variables_of(source)
        except TemplateSyntaxError as exc:
            issue(surface, "TEMPLATE-SYNTAX", f"line {exc.lineno}: {exc.message}")
            continue
        limit = allowed_class(surface, template.requires)
        for name in sorted(names):
            var = VARIABLES.get(name)
            if var is None:
                issue(surface, "TEMPLATE-UNTYPED", f"variable {name!r} has no declared type")
            elif var.content_class > limit:
                issue(surface, "HIPAA-CONTENT-CLASS",
                      f"{name} is {var.content_class.name}; {surface} allows up to {limit.name}")
        if surface == "url":
            # RULES.md §8: a URL is an opaque random token, nothing else.
            for name in sorted(names - {"payment_token"}):
                issue(surface, "HIPAA-CONTENT-CLASS", f"{name} may not appear in a URL")
        if surface == "voicemail":
            for name in sorted(names - LCM_VARIABLES):
                issue(surface, "REGF-LCM", f"{name} is not a limited-content field")
        literal = _literal_text(source)
        for word in FORBIDDEN_WORDS.get(surface, ()):
            if word in literal:
                issue(surface, "HIPAA-CONTENT-CLASS" if surface != "voicemail" else "REGF-LCM",
                      f"literal text {word!r} may not appear on {surface}")
        if surface in NAMED_SURFACES and "practice_name" not in names:
            issue(surface, "PLAT-NEUTRAL-NAME", "surface must name {{ practice_name }}")
    for surface in sorted(expected - set(template.surfaces)):
        if surface != "preheader":
            issue(surface, "TEMPLATE-SURFACE", f"{template.channel} template lacks {surface}")
    return issues


def _parse_file(path: Path) -> list[Template]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    requires = Conditions(**data.get("requires", {}))
    out = []
    for language in LANGUAGES:
        surfaces = data.get(language)
        if surfaces is None:
            continue
        out.append(Template(id=data["id"], language=language, channel=data["channel"],
                            description=data.get("description", ""),
                            surfaces=dict(surfaces), requires=requires))
    return out


def load_templates(directory: Path = TEMPLATE_DIR) -> dict[tuple[str, str], Template]:
    """Templates keyed by (id, language); refuses the whole set if any template fails lint."""
    found: dict[tuple[str, str], Template] = {}
    problems: list[LintIssue] = []
    for path in sorted(directory.glob("*.toml")):
        for template in _parse_file(path):
            problems.extend(lint(template))
            found[(template.id, template.language)] = template
    if problems:
        first = problems[0]
        raise TemplateRefused(f"template {first.template_id}/{first.language} "
                              f"{first.surface}: {first.rule}: {first.message}")
    return found


@lru_cache(maxsize=1)
def default_templates() -> dict[tuple[str, str], Template]:
    return load_templates()


def template_ids() -> list[str]:
    return sorted({key[0] for key in default_templates()})


@dataclasses.dataclass(frozen=True, slots=True)
class SurfaceContext:
    """What the dispatcher knows about one message (values may be PHI; never logged)."""

    channel: str
    display_name: str
    variables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    language: str = "en"
    phone_verified_and_consented: bool = False
    email_risk_acknowledged: bool = False
    opt_out_url: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Rendered:
    template_id: str
    language: str
    channel: str
    from_name: str
    sms_body: str | None = None
    subject: str | None = None
    preheader: str | None = None
    text_body: str | None = None
    html_body: str | None = None
    voicemail: str | None = None
    envelope: str | None = None
    letter_body: str | None = None
    list_unsubscribe_url: str | None = None
    includes_opt_out: bool = False
    contains: tuple[str, ...] = ()
    content_classes: Mapping[str, str] = dataclasses.field(default_factory=dict)


def is_opaque_url(value: str) -> bool:
    """HTTPS with a final path segment of at least 22 url-safe characters (>= 128 bits)."""
    return bool(_OPAQUE_URL.match(value)) and "?" not in value and "@" not in value


def _check_value(var: Variable, value: Any) -> None:
    ok = {
        "money": isinstance(value, int) and not isinstance(value, bool),
        "date": isinstance(value, dt.date),
        "url": isinstance(value, str) and is_opaque_url(value),
        "phone": isinstance(value, str) and re.fullmatch(r"\+?[0-9 ()-]{7,20}", value) is not None,
    }.get(var.kind, isinstance(value, str))
    if not ok:
        raise TemplateRefused(f"variable {var.name} is not a valid {var.kind}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    """One template made ready to render under one set of conditions: its lint result,
    the variables it uses, each surface compiled once by the sandboxed environment, and
    its content classes."""

    issues: tuple[LintIssue, ...]
    used: frozenset[str]
    text: Mapping[str, Template_]
    html_body: Template_ | None
    classes: Mapping[str, str]


@lru_cache(maxsize=512)
def _compile(template_id: str, language: str, channel: str,
             surfaces: tuple[tuple[str, str], ...], conditions: Conditions) -> _Compiled:
    template = Template(id=template_id, language=language, channel=channel, description="",
                        surfaces=dict(surfaces), requires=conditions)
    issues = tuple(lint(template))
    if issues:
        return _Compiled(issues, frozenset(), {}, None, {})
    used: set[str] = set()
    classes = {}
    for surface, source in surfaces:
        names = _variables_of(source)
        used |= names
        top = max((VARIABLES[n].content_class for n in names), default=_C0)
        classes[surface] = top.name
    text = {surface: _TEXT_ENV.from_string(source) for surface, source in surfaces}
    html_source = dict(surfaces).get("email_body") if channel == "email" else None
    html_body = _HTML_ENV.from_string(html_source) if html_source is not None else None
    return _Compiled((), frozenset(used), text, html_body, classes)


def compiled(template: Template, conditions: Conditions) -> _Compiled:
    """The cached compiled form of `template` under `conditions`. The cache key is the
    template id, language, channel and the full text of every surface (its version), so an
    edited template never renders from a stale entry; the Jinja environment stays the
    sandboxed one."""
    return _compile(template.id, template.language, template.channel,
                    tuple(sorted(template.surfaces.items())), conditions)


def render(template_id: str, surface_context: SurfaceContext) -> Rendered:
    """Render every surface of `template_id` for one message (see the module docstring)."""
    ctx = surface_context
    templates = default_templates()
    template = templates.get((template_id, ctx.language)) or templates.get((template_id, "en"))
    if template is None:
        raise TemplateRefused(f"unknown template {template_id!r}")
    return render_template(template, ctx)


def render_template(template: Template, surface_context: SurfaceContext) -> Rendered:
    """`render` for a given `Template` (from `default_templates()` or `load_templates`)."""
    ctx = surface_context
    template_id = template.id
    if template.channel != ctx.channel and not (
            {template.channel, ctx.channel} == {"call", "voicemail"}):
        raise TemplateRefused(f"template {template_id} is for {template.channel}, "
                              f"not {ctx.channel}")
    actual = Conditions(ctx.phone_verified_and_consented, ctx.email_risk_acknowledged)
    ready = compiled(template, actual)
    if ready.issues:
        first = ready.issues[0]
        raise TemplateRefused(f"template {template_id} refused on {first.surface}: "
                              f"{first.rule}: {first.message}")
    values: dict[str, Any] = {"practice_name": ctx.display_name}
    used = ready.used
    for name in sorted(used - {"practice_name"}):
        if name not in ctx.variables:
            raise TemplateRefused(f"template {template_id} needs variable {name}")
        _check_value(VARIABLES[name], ctx.variables[name])
        values[name] = ctx.variables[name]

    def text(surface: str) -> str | None:
        compiled_surface = ready.text.get(surface)
        if compiled_surface is None:
            return None
        return compiled_surface.render(values).strip()

    language = template.language
    out: dict[str, Any] = {}
    includes_opt_out = False
    if template.channel == "sms":
        body = text("sms_body") or ""
        # REGF-EOPTOUT (12 CFR 1006.6(e)): a reply keyword, always present.
        out["sms_body"] = f"{body} {OPT_OUT_TEXT['sms'][language]}"
        includes_opt_out = True
    if template.channel == "email":
        if ctx.opt_out_url is None or not is_opaque_url(ctx.opt_out_url):
            raise TemplateRefused("e-mail needs an opaque https opt-out url (REGF-EOPTOUT)")
        notice = OPT_OUT_TEXT["email"][language].format(url=ctx.opt_out_url)
        body = text("email_body") or ""
        out["subject"] = text("email_subject")
        out["preheader"] = text("preheader")
        out["text_body"] = f"{body}\n\n{notice}"
        if ready.html_body is None:
            raise TemplateRefused(f"template {template_id} lacks email_body")
        html_text = ready.html_body.render(values).strip()
        paragraphs = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>"
                             for p in html_text.split("\n\n") if p.strip())
        link = html.escape(ctx.opt_out_url, quote=True)
        notice_html = html.escape(OPT_OUT_TEXT["email"][language].format(url="")).rstrip()
        out["html_body"] = (f"<!doctype html><html lang=\"{language}\"><body>{paragraphs}"
                            f"<p><small>{notice_html} <a href=\"{link}\">{link}</a></small></p>"
                            "</body></html>")
        out["list_unsubscribe_url"] = ctx.opt_out_url
        includes_opt_out = True
    if template.channel in ("voicemail", "call"):
        out["voicemail"] = text("voicemail")
    if template.channel == "letter":
        out["envelope"] = text("envelope")
        out["letter_body"] = text("letter_body")
    from_name = text("from_name") or ctx.display_name
    tags = sorted({VARIABLES[name].tag for name in used} | {"practice_name_neutral"})
    if template.channel in ("voicemail", "call"):
        # The linter admitted only REGF-LCM fields, so the engine may treat it as an LCM.
        tags = ["lcm_required_only", "practice_name_neutral"]
    return Rendered(template_id=template.id, language=language, channel=template.channel,
                    from_name=from_name, includes_opt_out=includes_opt_out,
                    contains=tuple(tags), content_classes=dict(ready.classes), **out)


def lint_all(templates: Iterable[Template]) -> list[LintIssue]:
    return [issue for template in templates for issue in lint(template)]
