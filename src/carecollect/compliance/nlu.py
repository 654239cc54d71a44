"""Inbound free-text classification for the compliance engine (PLAT-REVOKE-NLU).

`classify(text)` reads one inbound message (SMS reply, email body, portal note, a
transcribed voicemail) and returns a `Classification`: which of the PLAT-REVOKE-NLU
categories it expresses -- (a) TCPA revocation, (b) Reg F medium opt-out, (c) cease,
(d) dispute, (e) attorney representation, (f) bankruptcy, (g) inconvenient time/place --
plus re-consent (START) and HELP keywords.

The classifier is a fixed set of precompiled, hand-written rules over a normalised form
of the text (lower case, accents folded, apostrophes dropped, punctuation reduced to
sentence marks). It is pure and deterministic: no I/O, no clock, no model, no logging,
and it never raises with or returns any part of the text (the text may hold PHI); the
`matched` labels come from a fixed vocabulary. See docs/NLU.md for the keyword lists,
the ambiguity policy and the known limits.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Final, Literal

__all__ = [
    "PER_SE_KEYWORDS_EN",
    "PER_SE_KEYWORDS_ES",
    "Classification",
    "Language",
    "Medium",
    "classify",
    "normalize",
]

Medium = Literal["sms", "email", "call", "voicemail", "letter"]
Language = Literal["en", "es"]

# Media covered by the TCPA (texts are "calls" under 47 U.S.C. 227; prerecorded
# voicemails are calls). An opt-out naming only email or letters is a Reg F medium
# opt-out (1006.14(h)) but not a TCPA revocation.
_TCPA_MEDIA: Final = frozenset({"sms", "call", "voicemail"})


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


@dataclass(frozen=True, slots=True)
class Classification:
    """What one inbound message asks for (PLAT-REVOKE-NLU categories (a)-(g)).

    `medium` is the first medium the person named ("don't email me" -> "email"); `media`
    lists every medium named, in order of appearance. A revocation that names no medium
    applies to the contact point the message came from (for a phone number: calls and
    texts, since texts are calls under the TCPA).

    `designation` is a best-effort structured reading of an inconvenient time/place
    (REGF-TIME-DESIGNATED, REGF-PLACE); keys are documented in docs/NLU.md. It is
    None when the classifier could not extract one even though a flag is set.
    """

    revocation: bool = False
    medium_optout: bool = False
    cease: bool = False
    dispute: bool = False
    attorney: bool = False
    bankruptcy: bool = False
    inconvenient_time: bool = False
    inconvenient_place: bool = False
    ambiguous: bool = False
    start: bool = False
    help: bool = False
    momentary: bool = False
    medium: Medium | None = None
    media: tuple[Medium, ...] = ()
    language: Language | None = None
    designation: dict[str, str] | None = field(default=None, hash=False)
    matched: tuple[str, ...] = ()

    @property
    def needs_human_review(self) -> bool:
        """PLAT-REVOKE-NLU (c)-(f): cease, dispute, attorney, bankruptcy go to staff."""
        return self.cease or self.dispute or self.attorney or self.bankruptcy

    @property
    def suppresses_channel(self) -> bool:
        """PLAT-REVOKE-NLU (a)/(b): positive or ambiguous revocation, or medium opt-out."""
        return self.revocation or self.medium_optout or self.ambiguous


# --------------------------------------------------------------------------- keywords

# 47 CFR 64.1200(a)(10) (FCC 24-24): per se reasonable revocation replies. Whole message
# or leading token, case- and punctuation-insensitive (TCPA-REVOKE-ANYMEANS).
PER_SE_KEYWORDS_EN: Final[tuple[str, ...]] = (
    "stop", "stopall", "quit", "end", "revoke", "opt out", "optout", "opt me out",
    "cancel", "unsubscribe",
)
# Spanish equivalents (platform policy: the same rule applied to the Spanish words a
# reasonable person uses for the listed English replies).
PER_SE_KEYWORDS_ES: Final[tuple[str, ...]] = (
    "parar", "detener", "detenga", "detengan", "cancelar", "baja", "darme de baja",
    "dar de baja", "de baja", "para", "pare", "paren", "alto",
)
# "para" is also the everyday preposition "for/to" and "alto" the adjective "high":
# they count only as the whole message (after fillers), never as a leading token.
_WHOLE_ONLY: Final = frozenset({("para",), ("pare",), ("paren",), ("alto",)})

_KEYWORD_TUPLES: Final[frozenset[tuple[str, ...]]] = frozenset(
    tuple(k.split()) for k in PER_SE_KEYWORDS_EN + PER_SE_KEYWORDS_ES
)
_KEYWORD_TOKENS: Final = frozenset(t for k in _KEYWORD_TUPLES for t in k)

# TCPA-RECONSENT and the CTIA HELP keyword: whole message only.
_START_WORDS: Final = frozenset(
    {("start",), ("unstop",), ("yes",), ("subscribe",), ("resubscribe",), ("opt", "in"),
     ("optin",), ("comenzar",), ("inicio",), ("iniciar",)}
)
_HELP_WORDS: Final = frozenset({("help",), ("info",), ("ayuda",)})
_POLITE: Final = frozenset({"please", "pls", "plz", "thanks", "thank", "you", "gracias", "por",
                            "favor"})

_LEAD_FILLER: Final = frozenset(
    {"please", "pls", "plz", "plse", "just", "ok", "okay", "k", "hey", "hi", "hello", "um",
     "uh", "oh", "so", "yo", "sorry", "and", "hola", "oye", "ya", "porfa", "por", "favor",
     "bueno", "pues"}
)
# Words that may follow a per se keyword without making the reply anything other than a
# plain revocation ("STOP please", "stop all texts now", "baja por favor").
_TRAIL_FILLER: Final = _LEAD_FILLER | _KEYWORD_TOKENS | frozenset(
    {"now", "right", "away", "immediately", "asap", "all", "it", "this", "that", "these",
     "those", "thanks", "thank", "you", "thx", "ty", "thankyou", "me", "already", "the",
     "texts", "text", "txt", "sms", "messages", "message", "msgs", "msg", "calls", "sending",
     "texting", "calling", "messaging", "contacting", "number", "again", "anymore", "any",
     "more", "of", "them", "to", "from", "list", "your", "my", "forever", "permanently",
     "u", "us", "everything", "gracias", "mensajes", "mensaje", "todo", "todos", "ahora",
     "mismo", "de", "los", "las", "la", "el", "mi", "mis", "lista", "inmediatamente",
     "textos", "llamadas", "ur", "stopp", "out"}
)

# A leading or mid-sentence "stop" followed by one of these is a different verb sense
# ("stop by the office", "stop the autopay") or a noun ("bus stop"); not a revocation.
_STOP_OTHER_SENSE_NEXT: Final = frozenset(
    {"by", "in", "over", "thinking", "worrying", "paying", "payment", "payments", "autopay",
     "auto", "automatic", "charging", "charges", "sign", "light", "crying", "the"}
)
_STOP_OTHER_SENSE_AFTER_THE: Final = frozenset(
    {"autopay", "payment", "payments", "charges", "charge", "automatic", "auto", "plan",
     "check", "card", "withdrawal", "withdrawals", "draft", "drafts"}
)
_STOP_NOUN_PREV: Final = frozenset(
    {"bus", "pit", "last", "next", "first", "one", "full", "truck", "rest", "non", "a"}
)

_MEDIUM_OF_TOKEN: Final[dict[str, Medium]] = {
    "text": "sms", "texts": "sms", "texting": "sms", "texted": "sms", "txt": "sms",
    "txts": "sms", "txting": "sms", "sms": "sms", "robotext": "sms", "robotexts": "sms",
    "textos": "sms", "texto": "sms", "textear": "sms", "textearme": "sms", "texteen": "sms",
    "textee": "sms",
    "call": "call", "calls": "call", "calling": "call", "called": "call", "phone": "call",
    "phoning": "call", "ring": "call", "ringing": "call", "robocall": "call",
    "robocalls": "call", "robocalling": "call", "llamar": "call", "llamarme": "call",
    "llamen": "call", "llame": "call", "llames": "call", "llamadas": "call",
    "llamada": "call", "llamando": "call",
    "email": "email", "emails": "email", "emailing": "email", "emailed": "email",
    "correo": "email", "correos": "email",
    "voicemail": "voicemail", "voicemails": "voicemail", "vm": "voicemail",
    "vms": "voicemail", "voz": "voicemail", "leaving": "voicemail", "leave": "voicemail",
    "letter": "letter", "letters": "letter", "mail": "letter", "mailing": "letter",
    "mailed": "letter", "carta": "letter", "cartas": "letter",
    "correspondencia": "letter",
}

# Tokens that mark a language; words shared by both ("no", "me", "a") are in neither.
_EN_WORDS: Final = _wordset(
    """i im you your my the this is are was stop please dont do not call text texting
    calling pay paid bill number wrong who what whats want quit end cancel unsubscribe
    opt out help info start yes thanks thank lawyer attorney bankruptcy work busy and
    to of it that at on in messages more again anymore leave alone before after owe
    already balance with have has be can cant will wont for about off list take remove
    lose email mail texts calls anything never ever any when does stopall enough
    interested filed chapter right now today morning night nights sunday sundays
    weekends monday saturday debt amount mine isnt refuse talk optout revoke go away
    unstop subscribe resubscribe further contact"""
)
_ES_WORDS: Final = _wordset(
    """el la los las de del que por favor para alto baja darme detener cancelar mas
    mensajes mensaje llamar llamarme llamen llame llames llamadas envie envien quiero
    mi mis es esto eso esta estoy debo ya pague deuda cuenta factura abogado abogada
    bancarrota quiebra trabajo ocupado ocupada domingos domingo gracias hola basta
    numero equivocado dejen deje dejar dejenme dejame paz ayuda comenzar inicio
    contacten contactarme molestar molesten correo correos manana noche tarde antes
    despues una un con en se su sus y nunca nada tengo soy son hablar puedo ahora
    lunes martes miercoles jueves viernes sabado sabados semana interesa textos cartas
    enviar mandar manden escriban mandarme enviarme escribirme pagar voy tiene
    declare capitulo monto cantidad cobro incorrecto pare paren parar sacame"""
)

# +1 per English marker word, -1 per Spanish one (English wins a word in both lists).
_LANGUAGE_SCORE: Final[dict[str, int]] = {
    **dict.fromkeys(_ES_WORDS, -1), **dict.fromkeys(_EN_WORDS, 1)
}

# --------------------------------------------------------------------------- patterns

_NOUN = (
    r"(?:text\s+messages?|texts?|txts?|sms|robotexts?|messages?|msgs?|phone\s+calls?|"
    r"robocalls?|calls?|emails?|mail|letters?|voicemails?|vms?|notifications?|"
    r"reminders?|alerts?)"
)
_DET = r"(?:(?:all|the|your|ur|these|those|with|any|more|further|of|this|such)\s+)*"
_VERB_ING = (
    r"(?:texting|txting|messaging|calling|phoning|ringing|emailing|mailing|writing|"
    r"contacting|bothering|harassing|spamming|hounding|pestering|robocalling|"
    rf"sending\s+(?:me\s+)?{_DET}{_NOUN}|sending|"
    r"leaving\s+(?:me\s+)?" + _DET + r"(?:voicemails?|messages?|vms?))"
)
_VERB_ES = (
    r"(?:llamar(?:me)?|escribir(?:me)?|enviar(?:me)?|mandar(?:me)?|textear(?:me)?|"
    r"molestar(?:me)?|contactar(?:me)?|acosar(?:me)?|hostigar(?:me)?)"
)
_NOUN_ES = (
    r"(?:mensajes\s+de\s+(?:texto|voz)|mensajes?|textos?|llamadas?|correos?(?:\s+electronicos?)?|"
    r"emails?|cartas?|notificaciones|recordatorios|alertas)"
)
_DAY = (
    r"(?:sundays?|mondays?|tuesdays?|wednesdays?|thursdays?|fridays?|saturdays?|"
    r"weekends?|weekdays?|domingos?|lunes|martes|miercoles|jueves|viernes|sabados?|"
    r"fin(?:es)?\s+de\s+semana)"
)
_CONTACT = (
    r"(?:call|text|txt|email|messag|contact|ring|phon|llam|escrib|envi|mand|mensaj|"
    r"texte|correo|bother|molest|reach)\w*+"
)
_NEG = r"(?:dont|do\s+not|never|no|stop|quit|please\s+dont|nunca|not)"
_PERIOD = (
    r"(?P<per>mornings?|evenings?|afternoons?|nights?|at\s+night|late\s+at\s+night|"
    r"daytime|during\s+the\s+day|(?:during\s+)?work(?:ing)?\s+hours|business\s+hours|"
    r"(?:so|this|too)\s+(?:early|late)|early|late|dinner(?:\s*time)?|lunch(?:\s*time)?|"
    r"(?:en|por)\s+la\s+(?:manana|noche|tarde)|en\s+las\s+(?:mananas|noches|tardes)|"
    r"de\s+noche|temprano|de\s+madrugada)"
)
_PLACE = (
    r"(?P<place>work|my\s+(?:job|work|office|workplace)|job|office|workplace|employer|"
    r"school|class|church|the\s+hospital|hospital|the\s+office|"
    r"(?:al|el|mi)\s+(?:trabajo|oficina)|trabajo|oficina|escuela|(?:el\s+)?hospital)"
)


def _time(prefix: str) -> str:
    return (
        rf"(?:(?P<{prefix}h>\d{{1,2}})(?::(?P<{prefix}m>\d{{2}}))?(?:\s*(?P<{prefix}ap>am|pm))?"
        r"(?:\s+oclock)?"
        rf"(?:\s+(?:de\s+la|en\s+la|in\s+the|at)\s+(?P<{prefix}per>manana|tarde|noche|"
        r"morning|evening|night|afternoon))?"
        rf"|(?P<{prefix}word>noon|midnight|mediodia|medianoche))"
    )


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# Everything after a contact request that turns it into a time/place designation rather
# than a revocation: "don't call me before 10am" designates a time (REGF-TIME-DESIGNATED),
# "stop calling me at work" a place (REGF-PLACE).
_QUAL_CORE = (
    rf"before|after|until|till|til|past|during|between|while|around|{_PERIOD}|"
    r"at\s+(?:\d|noon|midnight|work|my\s+(?:job|work|office|workplace)|the\s+(?:office|hospital)|"
    r"school|church|dinner|lunch)|"
    r"in\s+the\s+(?:mornings?|evenings?|afternoons?|night|day|daytime)|"
    rf"on\s+(?:the\s+|a\s+)?{_DAY}|{_DAY}|on\s+my\s+(?:work|job|office)|"
    r"(?:to|at)\s+my\s+(?:work|job|office)|my\s+(?:work|office)\s+(?:phone|number|line|email)|"
    r"antes|despues|(?:al|en\s+el|a\s+mi|en\s+mi)\s+(?:trabajo|oficina)|"
    rf"(?:los|el)\s+{_DAY}|tan\s+(?:temprano|tarde)"
)
_QUAL_SKIP = (
    r"(?:(?:me|us|this\s+number|my\s+(?:phone|cell|number)|here|anymore|again|ever|please|"
    r"pls|mas|por\s+favor)\s+)*"
)
_QUALIFIER = _rx(rf"\s+{_QUAL_SKIP}(?:{_QUAL_CORE})\b")
# A negated request ("don't call me now") also names only the present moment.
_QUALIFIER_NEG = _rx(
    rf"\s+{_QUAL_SKIP}(?:{_QUAL_CORE}|now|right\s+now|rn|today|tonight|at\s+the\s+moment|"
    r"ahora|hoy|esta\s+noche|en\s+este\s+momento)\b"
)

# A negator right before a phrase, or one word before it ("don't ever stop"), cancels it.
# "do not", "can not" ... end in "not".
_DAY_WORDS: Final = _wordset(
    """sunday sundays monday mondays tuesday tuesdays wednesday wednesdays thursday
    thursdays friday fridays saturday saturdays weekend weekends weekday weekdays domingo
    domingos lunes martes miercoles jueves viernes sabado sabados fin fines"""
)
# Every word a qualifier can start with, after the skipped words (a cheap pre-check).
_QUALIFIER_WORDS: Final = _DAY_WORDS | _wordset(
    """before after until till til past during between while around early late so this too at
    in on my to antes despues al en a los el tan mornings morning evenings evening afternoons
    afternoon nights night daytime work working business dinner dinnertime lunch lunchtime
    temprano de por now right rn today tonight ahora hoy esta"""
)
_NEGATORS: Final = frozenset(
    {"dont", "doesnt", "didnt", "never", "cant", "cannot", "wont", "shouldnt", "wouldnt", "not",
     "nunca"}
)
_NEGATOR_PAIRS: Final = frozenset({("did", "you"), ("did", "they"), ("did", "u")})


def _negated(tokens: list[str], position: int) -> bool:
    """True when tokens[position] is preceded by a negator (sentence marks stop the look)."""
    for last in (position - 1, position - 2):
        if last < 0 or tokens[last] == ".":
            return False
        if tokens[last] in _NEGATORS or (
            last >= 1 and (tokens[last - 1], tokens[last]) in _NEGATOR_PAIRS
        ) or (last >= 2 and tokens[last - 2:last + 1] == ["no", "need", "to"]):
            return True
    return False


_WHO = (
    r"(?:me|my\s+(?:(?:phone|cell|mobile)\s+)?(?:number|phone|cell|name|info|information|"
    r"contact\s+info|details|email(?:\s+address)?|address))"
)


@dataclass(frozen=True, slots=True)
class _Rule:
    label: str
    pattern: re.Pattern[str]
    # Every word a match can begin with: the pattern is tried only at those words.
    starts: frozenset[str]
    kind: str = "revocation"
    # A word the text must contain for a match to be possible (checked before the regex).
    requires: frozenset[str] = frozenset()
    revocation: bool = False
    cease: bool = False
    media_from_span: bool = True
    # True: a time/place qualifier after the match makes it a designation instead.
    qualifiable: bool = False
    negated_form: bool = False  # the match itself is a negated request ("don't call")
    check_negation: bool = False  # a negator just before the match cancels it


def _rule(
    label: str, pattern: str, starts: Iterable[str], *, kind: str = "revocation",
    requires: Iterable[str] = (), **flags: bool,
) -> _Rule:
    # Every match ends at a word end ("no me llame" must not stop inside "llames").
    return _Rule(
        label, _rx(f"(?:{pattern})(?![a-z0-9])"), frozenset(starts), kind, frozenset(requires),
        **flags,
    )


_NOUN_WORDS: Final = _wordset(
    """text texts txt txts sms robotext robotexts message messages msg msgs phone call calls
    robocall robocalls email emails mail letter letters voicemail voicemails vm vms
    notification notifications reminder reminders alert alerts"""
)


_STOP_WORDS = ("stop", "quit", "cease", "discontinue")
_REVOCATION_RULES: Final[tuple[_Rule, ...]] = (
    # (a)/(b) ordinary phrasing, TCPA-REVOKE-ANYMEANS and REGF-MEDIUM-OPTOUT.
    _rule(
        "revocation:stop_contact",
        rf"\b(?:stop|quit|cease|discontinue)\s+{_DET}(?:{_VERB_ING}|{_NOUN})"
        rf"(?:\s+(?:and|or|n|&|nor)\s+{_DET}(?:{_VERB_ING}|{_NOUN}))*",
        _STOP_WORDS, revocation=True, qualifiable=True, check_negation=True,
    ),
    _rule(
        "revocation:dont_contact",
        # "I don't text much" describes the writer; it asks nothing.
        r"(?<!\bi\s)(?<!\bwe\s)(?<!\byou\s)(?<!\bu\s)(?<!\bthey\s)"
        r"\b(?:dont|do\s+not|never|no\s+longer)\s+(?:ever\s+|again\s+|even\s+)?"
        r"(?:text|txt|call|phone|ring|email|message|msg|contact|write|mail|bother|harass|"
        r"robocall|sms)\b(?!\s+list)"
        r"(?:\s+(?:or|and|nor)\s+(?:text|txt|call|phone|email|message|contact|write|mail)\b)*",
        ("dont", "do", "never", "no"), revocation=True, qualifiable=True,
        negated_form=True,
        requires=_wordset(
            """text txt call phone ring email message msg contact write mail bother harass
            robocall sms"""
        ),
    ),
    _rule(
        "revocation:dont_send",
        rf"\b(?:dont|do\s+not|never|stop|quit)\s+(?:ever\s+)?send(?:ing)?\s+(?:me\s+)?{_DET}"
        rf"{_NOUN}",
        ("dont", "do", "never", "stop", "quit"), revocation=True, qualifiable=True,
        negated_form=True, check_negation=True,
        requires=("send", "sending"),
    ),
    _rule(
        "revocation:remove_me",
        rf"\b(?:(?:remove|delete|erase|lose|forget|unenroll|unenrol)\s+{_WHO}\b"
        rf"(?:\s+(?:off|from|out\s+of)\b)?|(?:take|drop|scratch|get|cross)\s+{_WHO}\s+"
        r"(?:off|from|out\s+of)\b)",
        ("take", "remove", "delete", "drop", "erase", "scratch", "get", "lose", "forget",
         "unenroll", "unenrol", "cross"),
        revocation=True,
    ),
    _rule(
        "revocation:leave_me_alone",
        r"\bleave\s+me\s+(?:the\s+\w+\s+)?alone\b",
        ("leave",), revocation=True, cease=True, media_from_span=False,
    ),
    _rule(
        "revocation:dont_want",
        r"\b(?:dont|do\s+not|no\s+longer|never)\s+(?:want|wish|need|like)\s+"
        r"(?:to\s+(?:receive|get)\s+)?(?:any\s+)?(?:more\s+|further\s+|these\s+|your\s+|"
        rf"the\s+|those\s+)*{_NOUN}",
        ("dont", "do", "no", "never"), revocation=True, qualifiable=True,
        requires=_NOUN_WORDS,
    ),
    _rule(
        "revocation:dont_want_you_to",
        r"\b(?:dont|do\s+not|no\s+longer)\s+(?:want|wish)\s+(?:you\s+|u\s+|anyone\s+)?to\s+"
        r"(?:text|txt|call|phone|email|message|contact|write|mail)\s+me\b",
        ("dont", "do", "no"), revocation=True, qualifiable=True,
        requires=("want", "wish"),
    ),
    _rule(
        "revocation:no_more",
        rf"\bno\s+(?:more|further)\s+(?:\w++\s)?{_NOUN}",
        ("no",), revocation=True, qualifiable=True,
        requires=("more", "further"),
    ),
    _rule(
        "revocation:no_noun",
        rf"\bno\s+{_NOUN}(?=\s*(?:please|pls|plz|anymore|thanks|thank|ever|again|\.|$))",
        ("no",), revocation=True,
        requires=_NOUN_WORDS,
    ),
    _rule(
        "revocation:stop_it",
        r"\b(?:(?:please|pls|plz|just)\s+stop(?!\s+(?:by|in|over|thinking|worrying|paying|"
        r"the\s+(?:autopay|payment|charges)))\b|stop\s+(?:it|this|now|already|immediately)\b|"
        r"make\s+(?:it|this|them|these)\s+stop\b)",
        ("please", "pls", "plz", "just", "stop", "make"), revocation=True, check_negation=True,
        media_from_span=False,
        requires=("stop",),
    ),
    _rule(
        "revocation:opt_out",
        rf"\b(?:unsubscribe|optout|opt\s+(?:me\s+)?out|revoke|revoking)\b"
        rf"(?:\s+(?:me\s+)?(?:of|from)\s+{_DET}(?:\w++\s)?{_NOUN})?",
        ("unsubscribe", "optout", "opt", "revoke", "revoking"), revocation=True,
        check_negation=True,
    ),
    _rule(
        "revocation:no_consent",
        r"\b(?:(?:dont|do\s+not|no\s+longer|never)\s+(?:consent|agree|authorize)\b"
        r"(?!\s+(?:with|that))|withdraw\w*\s+(?:my\s+)?(?:consent|permission|authorization)|"
        r"(?:retiro|revoco)\s+(?:mi\s+)?(?:consentimiento|autorizacion|permiso))"
        rf"(?:\s+(?:to|for)\s+(?:receive\s+|receiving\s+|any\s+)?{_DET}{_NOUN})?",
        ("dont", "do", "no", "never", "withdraw", "withdrawing", "withdraws", "withdrawn", "retiro",
         "revoco"),
        revocation=True,
        requires=_wordset(
            """consent agree authorize consentimiento autorizacion permiso permission
            authorization"""
        ),
    ),
    _rule(
        "revocation:do_not_call_list",
        r"\b(?:do\s+not\s+call|dont\s+call|dnc|no\s+call)\s+(?:list|registry)\b",
        ("do", "dont", "dnc", "no"), revocation=True, media_from_span=False,
        requires=("list", "registry"),
    ),
    # Enough of a specific medium ("enough with the texts").
    _rule(
        "revocation:enough_with",
        rf"\benough\s+(?:with\s+)?{_DET}{_NOUN}",
        ("enough",), revocation=True,
        requires=_NOUN_WORDS,
    ),
    # (c) cease and full-communication requests: REGF-CEASE / 1692c(c); also revoke
    # every channel.
    _rule(
        "cease:stop_all_contact",
        r"\b(?:cease\s+and\s+desist|(?:cease|stop|end|discontinue)\s+(?:all\s+)?"
        r"(?:communications?|contact|correspondence)|no\s+(?:further|more)\s+"
        r"(?:contact|communications?|correspondence))\b",
        ("cease", "stop", "end", "discontinue", "no"), revocation=True, cease=True,
        media_from_span=False,
        requires=_wordset("desist communication communications contact correspondence"),
    ),
    _rule(
        "cease:dont_want_contact",
        r"\b(?:dont|do\s+not|no\s+longer)\s+(?:want|wish)\s+to\s+be\s+"
        r"(?:contacted|bothered|harassed)\b",
        ("dont", "do", "no"), revocation=True, cease=True, media_from_span=False,
        requires=("contacted", "bothered", "harassed"),
    ),
    # Spanish ordinary phrasing.
    _rule(
        "revocation:es_dejen_de",
        rf"\b(?:deje|dejen|deja|dejes|dejar|dejen\s+ya|paren|pare|para|parar|basta)\s+de\s+"
        rf"{_VERB_ES}(?:\s+(?:\w++\s){{0,2}}?{_NOUN_ES})?",
        ("deje", "dejen", "deja", "dejes", "dejar", "paren", "pare", "para", "parar", "basta"),
        revocation=True, qualifiable=True,
        requires=("de",),
    ),
    _rule(
        "revocation:es_no_me",
        r"\bno\s+(?:me\s+|nos\s+)?(?:vuelva[ns]?\s+a\s+)?(?:llamen|llame|llames|llamar|"
        r"escriban|escriba|escribas|envien|envie|envies|manden|mande|mandes|contacten|"
        r"contacte|contactes|molesten|moleste|molestes|textee|texteen|textees|marquen|"
        r"acosen)(?:\s+(?:mas\s+)?(?:\w++\s)?" + _NOUN_ES + r")?",
        ("no",), revocation=True, qualifiable=True, negated_form=True,
        requires=_wordset(
            """llamen llame llames llamar escriban escriba escribas envien envie envies manden
            mande mandes contacten contacte contactes molesten moleste molestes textee texteen
            textees marquen acosen"""
        ),
    ),
    _rule(
        "revocation:es_no_quiero",
        r"\bno\s+(?:quiero|deseo|necesito)\s+(?:recibir\s+)?(?:mas\s+)?(?:sus\s+|los\s+|"
        rf"estos\s+)?{_NOUN_ES}",
        ("no",), revocation=True, qualifiable=True,
        requires=("quiero", "deseo", "necesito"),
    ),
    _rule(
        "revocation:es_no_quiero_que",
        r"\bno\s+(?:quiero|deseo)\s+que\s+me\s+(?:llamen|escriban|contacten|manden|envien|"
        r"molesten|texteen)\b",
        ("no",), revocation=True, qualifiable=True,
        requires=("quiero", "deseo"),
    ),
    _rule(
        "revocation:es_no_mas",
        rf"\b(?:no|ya\s+no|basta\s+de)\s+mas\s+{_NOUN_ES}|\bbasta\s+de\s+{_NOUN_ES}",
        ("no", "ya", "basta"), revocation=True, qualifiable=True,
        requires=("mas", "de"),
    ),
    _rule(
        "revocation:es_remove",
        r"\b(?:sacame|sacarme|saquenme|saqueme|quitame|quitenme|quiteme|borrenme|borrame|"
        r"eliminenme|eliminame|(?:eliminen|borren|quiten|saquen)\s+mi\s+(?:numero|telefono|"
        r"correo))\b",
        ("sacame", "sacarme", "saquenme", "saqueme", "quitame", "quitenme", "quiteme",
         "borrenme", "borrame", "eliminenme", "eliminame", "eliminen", "borren", "quiten",
         "saquen"),
        revocation=True,
    ),
    _rule(
        "revocation:es_baja",
        r"\b(?:darme|dar|deme|denme|dame|doy|me\s+doy)\s+de\s+baja\b",
        ("darme", "dar", "deme", "denme", "dame", "doy", "me"), revocation=True,
        media_from_span=False,
        requires=("baja",),
    ),
    _rule(
        "revocation:es_cancelar",
        r"\b(?:cancelar|cancelen|cancele|detengan|detenga|deten|paren|pare)\s+"
        r"(?:(?:los|las|mi|mis|la|el|su|sus|estos|estas)\s+)?(?:suscripcion|" + _NOUN_ES + ")",
        ("cancelar", "cancelen", "cancele", "detengan", "detenga", "deten", "paren", "pare"),
        revocation=True,
    ),
    _rule(
        "revocation:es_dejenme_en_paz",
        r"\b(?:dejenme|dejame|dejeme|deja\s+de\s+molestarme)\s+en\s+paz\b|"
        r"\b(?:dejenme|dejame|dejeme)\s+tranquil[oa]\b",
        ("dejenme", "dejame", "dejeme", "deja"), revocation=True, cease=True,
        media_from_span=False,
        requires=("paz", "tranquilo", "tranquila"),
    ),
)

# Spanish verbs and English words that make a revocation also a full cease request
# (1692c(c): the person wants communication, not one medium, to stop).
_CEASE_TOKENS: Final = frozenset(
    {"contact", "contacting", "bother", "bothering", "harass", "harassing", "hounding",
     "pestering", "contactar", "contactarme", "contacten", "contacte", "contactes",
     "molestar", "molestarme", "molesten", "moleste", "molestes", "acosar", "acosarme",
     "acosen", "hostigar", "hostigarme"}
)

_CEASE_ONLY_RULES: Final[tuple[_Rule, ...]] = (
    # 1692c(c): written refusal to pay. Inability ("can't pay until Friday") is not one.
    _rule(
        "cease:refuse_to_pay",
        r"\b(?:(?:refuse|refusing|refused)\s+to\s+pay|(?:wont|will\s+not|will\s+never|"
        r"never\s+going\s+to|not\s+going\s+to|never\s+gonna|not\s+gonna|im\s+not|i\s+am\s+not|"
        r"ill\s+never|i\s+will\s+never|am\s+never)\s+(?:ever\s+)?pay(?:ing)?\b"
        r"(?!\s+(?:until|till|til|unless|before|by|on|today|tomorrow|yet|right\s+now|now|"
        r"this\s+(?:week|month)|next|online|the\s+full|in\s+full|all\s+at\s+once|more\s+than|"
        r"over|for\s+now|at\s+the\s+moment)\b))"
        r"|\bme\s+niego\s+a\s+pagar\b|\bno\s+(?:voy\s+a|pienso)\s+pagar\b(?!\s+(?:hasta|antes|"
        r"ahora|hoy|todavia|aun))|\bno\s+pagare\b(?!\s+(?:hasta|antes))|\bnunca\s+(?:voy\s+a\s+)?"
        r"pagar(?:e)?\b",
        ("refuse", "refusing", "refused", "wont", "will", "never", "not", "im", "i", "ill", "am",
         "me", "no", "nunca"),
        kind="cease",
        requires=("pay", "paying", "pagar", "pagare"),
    ),
)

_DISPUTE_RULE: Final = _rule(
    "dispute",
    r"\b(?:"
    r"(?:this|that|it|thats|its|this\s+bill|the\s+bill|this\s+debt)\s+(?:is\s+)?"
    r"(?:isnt|is\s+not|not|aint)\s+(?:my|mine)\b|"
    r"not\s+(?:my|mine)\s+(?:bill|debt|account|charge|balance|responsibility)|"
    r"(?:i|we)\s+(?:dont|do\s+not|dont\s+even|do\s+not\s+even|never)\s+owe|"
    r"(?:owe|owes)\s+(?:you\s+)?nothing|"
    r"(?<!not\s)disput(?:e|es|ed|ing)|"
    r"already\s+paid|paid\s+(?:this|that|it|the\s+bill|that\s+bill|this\s+bill)?\s*"
    r"(?:already|in\s+full|off)|paid\s+in\s+full|"
    r"(?:wrong|incorrect)\s+(?:amount|bill|balance|charge|charges|total|account|patient|person)|"
    r"(?:amount|bill|balance|charge|total)\s+(?:is|was)\s+(?:wrong|incorrect|not\s+right|"
    r"not\s+correct|a\s+mistake)|"
    r"(?:billing|billed\s+in)\s+error|overcharged|over\s+charged|double\s+(?:billed|charged)|"
    r"charged\s+(?:me\s+)?twice|"
    r"insurance\s+(?:should|was\s+supposed\s+to|already|needs\s+to|is\s+supposed\s+to)\s+"
    r"(?:have\s+)?(?:cover|covered|pay|paid|pays)|"
    r"never\s+(?:received|got|had|gotten)\s+(?:(?:this|that|these|the|any|those)\s+)?"
    r"(?:service|services|treatment|care|procedure|visit)|"
    r"never\s+(?:been|went)\s+(?:there|to\s+(?:that|this|your))|never\s+(?:a|your)\s+patient|"
    r"not\s+(?:a|your)\s+patient|"
    r"validat(?:e|ed|ing|ion)|verification\s+of\s+(?:the|this)\s+debt|verify\s+(?:this|the)\s+debt|"
    r"proof\s+(?:of|that)\s+(?:this|the|i\s+owe)|identity\s+theft|fraudulent|fraud|"
    r"no\s+(?:le\s+|les\s+)?debo|no\s+es\s+mi\s+(?:deuda|cuenta|factura|cargo|saldo)|"
    r"no\s+es\s+mi[ao]\b|"
    r"ya\s+(?:lo\s+|la\s+)?pague|ya\s+(?:esta|fue)\s+pagad[oa]|"
    r"(?:cantidad|monto|cobro|cargo|factura|cuenta|saldo)\s+(?:es\s+)?"
    r"(?:incorrect[oa]|equivocad[oa]|erroneo|erronea|indebido)|"
    r"disputo|disputar|nunca\s+(?:recibi|recibimos)\s+(?:(?:el|ese|este|los|esos|estos|la|esa|"
    r"esta)\s+)?(?:servicio|servicios|tratamiento|atencion|procedimiento)|"
    r"nunca\s+fui\s+(?:paciente|a\s+(?:esa|ese|su))|"
    r"el\s+seguro\s+(?:debe|deberia|debio|tiene\s+que)\s+(?:pagar|cubrir)"
    r")\b",
    _wordset(
        """this that it thats its the not i we owe owes dispute disputes disputed disputing
        already paid wrong incorrect amount bill balance charge total billing billed
        overcharged over double charged insurance never validate validated validating
        validation verification verify proof identity fraudulent fraud no ya cantidad monto
        cobro cargo factura cuenta saldo disputo disputar nunca el"""
    ),
    kind="dispute",
)

_ATTORNEY_RULE: Final = _rule(
    "attorney",
    r"\b(?<!power\sof\s)(?:lawyers?|attorneys?|atty|counsel|legal\s+aid|law\s+(?:firm|office)|"
    r"abogad[oa]s?)\b(?!\s+general)",
    ("lawyer", "lawyers", "attorney", "attorneys", "atty", "counsel", "legal", "law",
     "abogado", "abogada", "abogados", "abogadas"),
    kind="attorney",
)
_BANKRUPTCY_RULE: Final = _rule(
    "bankruptcy",
    r"\b(?:bankruptcy|bankruptcies|bankrupt|chapter\s*(?:7|13|11|seven|thirteen|eleven)|"
    r"ch\s*(?:7|13)|filed\s+bk|bk\s+(?:case|filing|attorney|lawyer|trustee)|"
    r"automatic\s+stay|bancarrota|quiebra|capitulo\s*(?:7|13|siete|trece))\b",
    _wordset(
        """bankruptcy bankruptcies bankrupt chapter chapter7 chapter13 chapter11 ch ch7 ch13
        filed bk automatic bancarrota quiebra capitulo capitulo7 capitulo13"""
    ),
    kind="bankruptcy",
)

# Ambiguous revocation signals (treated as revocation, TCPA-REVOKE-ANYMEANS).
_AMBIGUOUS_RULE: Final = _rule(
    "ambiguous:phrase",
    r"\b(?:wrong\s+(?:number|person|phone|guy|girl|lady|man)|numero\s+equivocado|"
    r"equivocad[oa]\s+de\s+numero|se\s+equivoc\w*(?:\s+de\s+numero)?|"
    r"not\s+interested(?=\s*(?:\.|$|thanks|thank|please|pls|stop|bye|ok|at\s+all))|"
    r"no\s+(?:me\s+interesa|estoy\s+interesad[oa])|spam|spamming|scam|"
    r"go\s+away|(?:fuck|f|piss|buzz|bugger)\s+off|get\s+lost|how\s+did\s+you\s+get\s+"
    r"(?:my|this)\s+(?:number|phone|cell|email)|como\s+(?:consiguieron|obtuvieron|"
    r"consiguio|obtuvo)\s+mi\s+(?:numero|telefono))\b",
    _wordset(
        """wrong numero equivocado equivocada se not no spam spamming scam go fuck f piss buzz
        bugger get how como"""
    ),
    kind="ambiguous",
    requires=_wordset(
        """number person phone guy girl lady man equivocado equivocada equivoco equivocaron
        equivocaste equivocan interested interesa interesado interesada spam spamming scam away
        off lost email cell numero telefono"""
    ),
)

# Start word -> rules to try there, in a fixed order (results must be deterministic).
_INDEX: Final[dict[str, tuple[_Rule, ...]]] = {}
for _each in (*_REVOCATION_RULES, *_CEASE_ONLY_RULES, _DISPUTE_RULE, _ATTORNEY_RULE,
              _BANKRUPTCY_RULE, _AMBIGUOUS_RULE):
    for _word in sorted(_each.starts):
        _INDEX[_word] = (*_INDEX.get(_word, ()), _each)
del _each, _word
_AMBIGUOUS_WHOLE: Final = frozenset(
    {("enough",), ("thats", "enough"), ("enough", "already"), ("enough", "is", "enough"),
     ("basta",), ("ya", "basta"), ("basta", "ya"), ("no", "thanks"), ("no", "thank", "you"),
     ("no", "gracias"), ("not", "interested")}
)

@dataclass(frozen=True, slots=True)
class _Finder:
    """A pattern tried only at the words it can begin with (a whole-string search with
    leading alternations costs several times more)."""

    pattern: re.Pattern[str]
    words: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def first(self, norm: str, words: list[str], offsets: list[int]) -> re.Match[str] | None:
        for index, word in enumerate(words):
            if word in self.words or (self.prefixes and word.startswith(self.prefixes)):
                match = self.pattern.match(norm, offsets[index])
                if match is not None:
                    return match
        return None


def _finder(pattern: str, words: Iterable[str], prefixes: tuple[str, ...] = ()) -> _Finder:
    return _Finder(_rx(f"(?:{pattern})(?![a-z0-9])"), frozenset(words), prefixes)


_NEG_STARTS: Final = frozenset({"dont", "do", "never", "no", "stop", "quit", "please", "nunca",
                                "not"})
_CONTACT_PREFIXES: Final = (
    "call", "text", "txt", "email", "messag", "contact", "ring", "phon", "llam", "escrib",
    "envi", "mand", "mensaj", "texte", "correo", "bother", "molest", "reach",
)

# (g) inconvenient time, REGF-TIME-DESIGNATED.
_TIME_NEG_RX: Final = _finder(
    rf"\b{_NEG}\s+(?:\w++\s){{0,2}}?{_CONTACT}\s+(?:\w++\s){{0,3}}?"
    rf"(?P<dir>before|after|past|until|till|antes\s+de|despues\s+de)\s+(?:las?\s+)?{_time('a')}",
    _NEG_STARTS,
)
_TIME_NOT_RX: Final = _finder(
    rf"\b(?:not|nothing|never|nunca|no|nada)\s+(?P<dir>before|after|past|antes\s+de|"
    rf"despues\s+de)\s+(?:las?\s+)?{_time('a')}",
    ("not", "nothing", "never", "nunca", "no", "nada"),
)
_TIME_POS_RX: Final = _finder(
    r"\b(?:call|text|txt|contact|reach|message|email|llam\w*+|escrib\w*+|contact\w*+)\s+"
    r"(?:me\s+)?(?:only\s+|solo\s+)?(?P<dir>after|past|before|despues\s+de|antes\s+de)\s+"
    rf"(?:las?\s+)?{_time('a')}",
    ("call", "text", "txt", "contact", "reach", "message", "email"),
    ("llam", "escrib", "contact"),
)
_TIME_BETWEEN_RX: Final = _finder(
    rf"\b(?:(?P<neg>{_NEG})\s+(?:\w++\s){{0,2}}?)?{_CONTACT}\s+(?:\w++\s){{0,2}}?"
    rf"(?:between|entre)\s+(?:las?\s+)?{_time('a')}\s+(?:and|y|to|-)\s+(?:las?\s+)?{_time('b')}",
    _NEG_STARTS,
    _CONTACT_PREFIXES,
)
_DAY_RX: Final = _finder(
    rf"\b(?:{_NEG}\s+(?:\w++\s){{0,2}}?{_CONTACT}\s+(?:\w++\s){{0,3}}?"
    rf"(?:on\s+|los\s+|el\s+|during\s+)?(?:the\s+|a\s+)?(?P<day>{_DAY})|"
    rf"not\s+(?:on\s+)?(?:a\s+|the\s+)?(?P<day2>{_DAY})|"
    rf"(?P<day3>{_DAY})\s+(?:are|is|arent|isnt)\s+(?:bad|not\s+good|inconvenient|off\s+limits)|"
    rf"(?:no|nunca)\s+(?:los|el)\s+(?P<day4>{_DAY})|(?:los|el)\s+(?P<day5>{_DAY})\s+no\b|"
    rf"busy\s+(?:on\s+)?(?P<day6>{_DAY}))",
    _NEG_STARTS | _DAY_WORDS | {"los", "el", "busy"},
)
_PERIOD_RX: Final = _finder(
    rf"\b(?:{_NEG}\s+(?:\w++\s){{0,2}}?{_CONTACT}\s+(?:\w++\s){{0,3}}?"
    rf"(?:in\s+the\s+|during\s+the\s+|at\s+|during\s+)?{_PERIOD}|"
    r"(?P<per2>mornings|evenings|nights|afternoons)\s+(?:are|arent)\s+(?:bad|not\s+good|"
    r"inconvenient)|not\s+in\s+the\s+(?P<per3>morning|evening|afternoon)s?)\b",
    _NEG_STARTS | {"mornings", "evenings", "nights", "afternoons"},
)
_SCHEDULE_RX: Final = _finder(
    r"\b(?:i\s+work\s+(?:the\s+)?(?:nights?|overnights?|night\s+shifts?|graveyard|third\s+shift)|"
    r"i\s+(?:sleep|am\s+asleep|m\s+asleep)\s+(?:during\s+the\s+day|days|in\s+the\s+day)|"
    r"(?:trabajo|trabajamos)\s+(?:de|en\s+la|por\s+la)\s+noche|duermo\s+(?:de|en\s+el)\s+dia)\b",
    ("i", "trabajo", "trabajamos", "duermo"),
)
_MOMENT_RX: Final = _finder(
    r"\b(?:(?:im|i\s+am)\s+(?:really\s+|very\s+|kinda\s+|so\s+)?busy(?!\s+(?:on|every|all|"
    r"in\s+the|at\s+night|during))|busy\s+(?:right\s+)?now|"
    r"(?:cant|cannot|can\s+not)\s+talk|(?:in\s+a\s+meeting)|(?:im|i\s+am)\s+driving|"
    r"call\s+(?:me\s+)?(?:back\s+)?(?:later|tomorrow)|(?:not\s+a\s+good|bad)\s+time|"
    r"estoy\s+ocupad[oa]|no\s+puedo\s+hablar|ahora\s+no(?:\s+puedo)?\b|estoy\s+manejando|"
    r"(?:llam|escrib)(?:ame|eme|enme)\s+(?:mas\s+)?(?:tarde|manana|luego|despues))",
    ("im", "i", "busy", "cant", "cannot", "can", "in", "call", "not", "bad", "estoy", "no",
     "ahora"),
    ("llam", "escrib"),
)

# (g) inconvenient place, REGF-PLACE / REGF-WORK-PLACE.
_PLACE_RX: Final = _finder(
    rf"\b(?:{_NEG}\s+(?:\w++\s){{0,2}}?{_CONTACT}\s+(?:\w++\s){{0,3}}?"
    rf"(?:at|to|on|in|al|en|a)\s+(?:the\s+|my\s+|el\s+|la\s+|mi\s+)?{_PLACE}|"
    r"(?:im|i\s+am|currently|still|estoy|sigo)\s+(?:\w++\s)?(?:in|at|en)\s+(?:the\s+|el\s+|la\s+)?"
    r"(?P<place2>hospital|er|emergency\s+room|icu|work|school|class|church|trabajo|"
    r"escuela|funeral)|"
    r"(?:this\s+is|thats|that\s+is|its|it\s+is|es)\s+(?:my\s+|a\s+|mi\s+|el\s+|un\s+)?"
    r"(?P<place3>work|office|business|company|(?:numero|telefono|correo)\s+(?:de|del)\s+"
    r"(?:mi\s+)?trabajo)\b(?:\s+(?:number|phone|cell|line|email))?|"
    r"(?:my\s+)?(?:employer|boss|job|work|company)\s+(?:doesnt|does\s+not|dont|do\s+not|"
    r"wont|will\s+not)\s+(?:allow|permit|let)|"
    r"not\s+at\s+(?P<place4>work|my\s+job|school))\b",
    _NEG_STARTS | {"im", "i", "currently", "still", "estoy", "sigo", "this", "thats", "that",
                   "its", "it", "es", "my", "employer", "boss", "job", "work", "company"},
)

_PLACE_VALUE: Final = {
    "work": "work", "job": "work", "office": "work", "workplace": "work",
    "employer": "work", "trabajo": "work", "oficina": "work", "business": "work",
    "company": "work", "hospital": "hospital", "er": "hospital", "emergency": "hospital",
    "icu": "hospital", "school": "school", "class": "school", "escuela": "school",
    "church": "church", "funeral": "funeral",
}
_DAY_VALUE: Final = {
    "sunday": "sunday", "monday": "monday", "tuesday": "tuesday", "wednesday": "wednesday",
    "thursday": "thursday", "friday": "friday", "saturday": "saturday",
    "weekend": "weekend", "weekday": "weekday", "domingo": "sunday", "lunes": "monday",
    "martes": "tuesday", "miercoles": "wednesday", "jueves": "thursday",
    "viernes": "friday", "sabado": "saturday", "fin": "weekend", "fines": "weekend",
}
_PERIOD_VALUE: Final = {
    "morning": "morning", "manana": "morning", "mananas": "morning", "evening": "evening",
    "afternoon": "afternoon", "tarde": "afternoon", "tardes": "afternoon", "night": "night",
    "noche": "night", "noches": "night", "madrugada": "night", "early": "early",
    "temprano": "early", "late": "late", "daytime": "daytime", "day": "daytime",
    "work": "work_hours", "working": "work_hours", "business": "work_hours",
    "dinner": "dinner", "lunch": "lunch",
}

_TIME_TRIGGERS: Final = frozenset(
    {"before", "after", "past", "until", "till", "antes", "despues", "between", "entre"}
)
_DAY_TRIGGERS: Final = _wordset(
    """sunday sundays monday mondays tuesday tuesdays wednesday wednesdays thursday
    thursdays friday fridays saturday saturdays weekend weekends weekday weekdays domingo
    domingos lunes martes miercoles jueves viernes sabado sabados semana"""
)
_PERIOD_TRIGGERS: Final = _wordset(
    """morning mornings evening evenings afternoon afternoons night nights daytime day
    work working business early late dinner dinnertime lunch lunchtime manana mananas
    noche noches tarde tardes temprano madrugada"""
)
_SCHEDULE_TRIGGERS: Final = frozenset({"work", "sleep", "asleep", "trabajo", "trabajamos",
                                       "duermo"})
_MOMENT_TRIGGERS: Final = _wordset(
    """busy talk meeting driving later tomorrow time ocupado ocupada hablar ahora manejando
    tarde manana luego despues"""
)
_PLACE_TRIGGERS: Final = _wordset(
    """work job office workplace employer school class church hospital er emergency icu
    business company trabajo oficina escuela funeral boss"""
)

# ------------------------------------------------------------------- normalisation

_QUOTES: Final = ("\u2019", "\u2018", "\u00b4", "\u02bc")
# Letters only: punctuation (even "¿" and "¡") must not change a classification.
_SPANISH_MARKS: Final = re.compile("[\u00f1\u00e1\u00e9\u00ed\u00f3\u00fa]")
_EMAIL_RX: Final = re.compile(r"\be\s*-\s*mail")
_VOICEMAIL_RX: Final = re.compile(r"\bvoice\s*-?\s*mail")
_MERIDIEM_RX: Final = re.compile(r"\b([ap])\.\s?m\b\.?")
# Commas count as sentence marks too: "no, call me after 5" is not "no call after 5".
_TOKEN_RX: Final = re.compile(r"\d{1,2}:\d{2}|[a-z0-9]+|[.!?;,:]+")
_SENTENCE_MARKS: Final = frozenset(".!?;,:")


def _fold(text: str) -> str:
    lowered = text.lower()
    if not lowered.isascii():
        for quote in _QUOTES:
            lowered = lowered.replace(quote, "'")
        # NFKD splits "á" into "a" + a combining accent; dropping every non-ASCII code point
        # then removes the accents (and emoji and the like, which tokens ignore anyway).
        lowered = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode()
    if "mail" in lowered:
        lowered = _EMAIL_RX.sub("email", lowered)
        lowered = _VOICEMAIL_RX.sub("voicemail", lowered)
    if "m." in lowered:
        lowered = _MERIDIEM_RX.sub(r"\1m", lowered)
    # Apostrophes are dropped so "don't" and "dont" read the same.
    return lowered.replace("'", "")


def _tokens(text: str) -> list[str]:
    return [
        "." if tok[0] in _SENTENCE_MARKS else tok for tok in _TOKEN_RX.findall(_fold(text))
    ]


def normalize(text: str) -> str:
    """The normalised form the rules read: folded words and sentence marks, space-joined.

    Lower case, accents removed, apostrophes dropped, every run of sentence punctuation
    reduced to ".", everything else that is not a letter or digit removed.
    """
    return " ".join(_tokens(text))


# ------------------------------------------------------------------- time parsing


def _clock(
    match: re.Match[str], prefix: str, direction: str
) -> tuple[str, bool] | None:
    """HH:MM of the time in `match` and whether the meridiem was assumed.

    Without am/pm the hour is guessed: for "after X" 1-11 is read as p.m.; for
    "before X" 7-12 as a.m. and 1-6 as p.m. (nobody asks not to be called before 3 a.m.).
    """
    word = match.group(f"{prefix}word")
    if word is not None:
        return ("12:00" if word in ("noon", "mediodia") else "00:00"), False
    hour = int(match.group(f"{prefix}h"))
    minute = int(match.group(f"{prefix}m") or 0)
    if hour > 23 or minute > 59:
        return None
    meridiem = match.group(f"{prefix}ap")
    period = match.group(f"{prefix}per")
    assumed = False
    if meridiem == "pm" or period in ("tarde", "noche", "evening", "night", "afternoon"):
        if hour < 12:
            hour += 12
    elif meridiem == "am" or period in ("manana", "morning"):
        if hour == 12:
            hour = 0
    elif 1 <= hour <= 11:
        assumed = True
        if direction == "after" or hour <= 6:
            hour += 12
    return f"{hour:02d}:{minute:02d}", assumed


def _direction(word: str) -> str:
    return "before" if word.startswith(("before", "antes")) else "after"


def _time_designation(
    norm: str, words: list[str], offsets: list[int]
) -> dict[str, str] | None:
    """First explicit clock-time designation in the message, or None."""
    between = "between" in words or "entre" in words
    for rx, positive in (
        (_TIME_BETWEEN_RX, None), (_TIME_NEG_RX, False), (_TIME_NOT_RX, False),
        (_TIME_POS_RX, True),
    ):
        if positive is None and not between:
            continue
        match = rx.first(norm, words, offsets)
        if match is None:
            continue
        if positive is None:
            start = _clock(match, "a", "before")
            end = _clock(match, "b", "after")
            if start is None or end is None:
                continue
            negated = match.group("neg") is not None
            # "don't call between 9 and 5" makes the window inconvenient; "call me between
            # 5 and 7" makes everything outside it inconvenient.
            designation = (
                {"kind": "time", "from": start[0], "to": end[0]}
                if negated
                else {"kind": "time", "before": start[0], "after": end[0]}
            )
            if start[1] or end[1]:
                designation["meridiem"] = "assumed"
            return designation
        direction = _direction(match.group("dir"))
        if positive:
            # "call me after 5" designates the time before 5 as inconvenient.
            direction = "after" if direction == "before" else "before"
        parsed = _clock(match, "a", direction)
        if parsed is None:
            continue
        designation = {"kind": "time", direction: parsed[0]}
        if parsed[1]:
            designation["meridiem"] = "assumed"
        return designation
    return None


def _first_group(match: re.Match[str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = match.group(name)
        if value is not None:
            return value
    return None


def _value_of(phrase: str | None, table: dict[str, str]) -> str | None:
    if phrase is None:
        return None
    # The head noun comes last: "late at night" is night, "my job" is work.
    for word in reversed(phrase.split()):
        if word in table:
            return table[word]
        singular = word[:-1] if word.endswith("s") else word
        if singular in table:
            return table[singular]
    return None


# ------------------------------------------------------------------- classification


def _strip_lead(words: list[str]) -> int:
    index = 0
    while index < len(words) - 1 and words[index] in _LEAD_FILLER:
        index += 1
    return index


def _language(text: str, words: list[str]) -> Language | None:
    """Majority of marker words; an accented Spanish letter counts for two."""
    score = sum(map(_LANGUAGE_SCORE.get, words, repeat(0)))
    if not text.isascii() and _SPANISH_MARKS.search(text.lower()):
        score -= 2
    if score > 0:
        return "en"
    if score < 0:
        return "es"
    return None


def _media_in(span_words: list[str]) -> list[Medium]:
    found: list[Medium] = []
    for word in span_words:
        medium = _MEDIUM_OF_TOKEN.get(word)
        if medium is not None and medium not in found:
            found.append(medium)
    return found


def _stop_other_sense(words: list[str], index: int) -> bool:
    """True when words[index] == "stop" is a noun or another verb sense."""
    if index > 0 and words[index - 1] in _STOP_NOUN_PREV:
        return True
    if index + 1 < len(words):
        following = words[index + 1]
        if following == "the":
            return index + 2 < len(words) and words[index + 2] in _STOP_OTHER_SENSE_AFTER_THE
        return following in _STOP_OTHER_SENSE_NEXT
    return False


def _first_sentence(tokens: list[str], offset: int) -> list[str]:
    """Words of the sentence that starts at `offset` in the joined tokens."""
    position = 0
    sentence: list[str] = []
    for piece in tokens:
        if position >= offset:
            if piece == ".":
                break
            sentence.append(piece)
        position += len(piece) + 1
    return sentence


def _record(labels: list[str], label: str) -> None:
    if label not in labels:
        labels.append(label)


def classify(text: str) -> Classification:
    """Classify one inbound message (PLAT-REVOKE-NLU).

    Pure and deterministic; the result never contains any part of `text`.
    """
    tokens = _tokens(text)
    norm = " ".join(tokens)
    words: list[str] = []
    offsets: list[int] = []  # offset of each word in `norm`
    places: list[int] = []  # index of each word in `tokens`
    position = 0
    for token_index, piece in enumerate(tokens):
        if piece != ".":
            words.append(piece)
            offsets.append(position)
            places.append(token_index)
        position += len(piece) + 1
    vocabulary = frozenset(words)
    matched: list[str] = []
    media: list[Medium] = []

    revocation = False  # any revocation, clear or not
    clear_revocation = False  # a phrase or a plain per se keyword said it unambiguously
    cease = False
    ambiguous_signal = False
    # Offsets where a contact request turned out to be a time/place designation.
    designation_starts: set[int] = set()

    # One pass over the words: every rule is tried only where it can begin.
    signals: set[str] = set()
    for index, word in enumerate(words):
        rules = _INDEX.get(word)
        if rules is None:
            continue
        at = offsets[index]
        for rule in rules:
            if rule.requires and rule.requires.isdisjoint(vocabulary):
                continue
            if rule.kind != "revocation":
                if rule.kind not in signals and rule.pattern.match(norm, at):
                    signals.add(rule.kind)
                continue
            match = rule.pattern.match(norm, at)
            if match is None:
                continue
            if rule.check_negation and _negated(tokens, places[index]):
                continue
            if rule.qualifiable and not _QUALIFIER_WORDS.isdisjoint(
                norm[match.end():match.end() + 48].split()[:5]
            ):
                qualifier = _QUALIFIER_NEG if rule.negated_form else _QUALIFIER
                if qualifier.match(norm, match.end()):
                    designation_starts.add(at)
                    continue
            # (a)/(b)/(c): ordinary phrasing, English and Spanish.
            span_words = match.group(0).split()
            revocation = clear_revocation = True
            if rule.cease or not _CEASE_TOKENS.isdisjoint(span_words):
                cease = True
            if rule.media_from_span:
                for medium in _media_in(span_words):
                    if medium not in media:
                        media.append(medium)
            _record(matched, rule.label)

    # Per se keywords: whole message or leading token (TCPA-REVOKE-ANYMEANS,
    # 64.1200(a)(10)); leading greetings and "please" are skipped.
    lead = _strip_lead(words)
    content = words[lead:]
    # The keyword's own sentence decides: "STOP. I have a lawyer." is a plain STOP.
    per_se = False
    for size in (3, 2, 1) if content and content[0] in _KEYWORD_TOKENS else ():
        head = tuple(content[:size])
        if len(head) != size or head not in _KEYWORD_TUPLES:
            continue
        sentence = _first_sentence(tokens, offsets[lead])
        plain = all(word in _TRAIL_FILLER for word in sentence[size:])
        if head == ("stop",) and _stop_other_sense(content, 0):
            break
        if not plain and (head in _WHOLE_ONLY or offsets[lead] in designation_starts):
            break
        per_se = revocation = True
        _record(matched, "revocation:per_se")
        if plain:
            clear_revocation = True
        elif not clear_revocation:
            # A leading keyword followed by unrelated words ("End of the month works")
            # is still a per se revocation; unless a phrase also said it, mark the doubt.
            ambiguous_signal = True
            _record(matched, "ambiguous:leading_keyword")
        break

    # "stop" elsewhere in the message ("who is this? stop"): ambiguous revocation.
    if "stop" in vocabulary and not clear_revocation:
        for index, word in enumerate(words):
            if word != "stop" or (index == lead and (per_se or offsets[index] in
                                                     designation_starts)):
                continue
            if offsets[index] in designation_starts or _stop_other_sense(words, index):
                continue
            if _negated(tokens, places[index]):
                continue
            ambiguous_signal = True
            _record(matched, "ambiguous:stop_in_text")
            break

    if tuple(content) in _AMBIGUOUS_WHOLE:
        ambiguous_signal = True
        _record(matched, "ambiguous:whole_message")
    elif "ambiguous" in signals:
        ambiguous_signal = True
        _record(matched, "ambiguous:phrase")

    # (c) a refusal to pay is a cease request (1692c(c)) but names no channel.
    if "cease" in signals:
        cease = True
        _record(matched, "cease:refuse_to_pay")
    # (d)-(f). Attorney and bankruptcy are mention-based on purpose: a person reads it.
    dispute = "dispute" in signals
    attorney = "attorney" in signals
    bankruptcy = "bankruptcy" in signals
    for kind in ("dispute", "attorney", "bankruptcy"):
        if kind in signals:
            _record(matched, kind)

    # (g) time designations, REGF-TIME-DESIGNATED.
    designation: dict[str, str] | None = None
    inconvenient_time = False
    if not _TIME_TRIGGERS.isdisjoint(vocabulary):
        designation = _time_designation(norm, words, offsets)
        if designation is not None:
            inconvenient_time = True
            _record(matched, "time:clock")
    if not _DAY_TRIGGERS.isdisjoint(vocabulary):
        day_match = _DAY_RX.first(norm, words, offsets)
        if day_match is not None:
            inconvenient_time = True
            _record(matched, "time:day")
            day = _value_of(
                _first_group(day_match, ("day", "day2", "day3", "day4", "day5", "day6")),
                _DAY_VALUE,
            )
            if designation is None and day is not None:
                designation = {"kind": "day", "value": day}
    if not _PERIOD_TRIGGERS.isdisjoint(vocabulary):
        period_match = _PERIOD_RX.first(norm, words, offsets)
        if period_match is not None:
            inconvenient_time = True
            _record(matched, "time:period")
            period = _value_of(_first_group(period_match, ("per", "per2", "per3")),
                               _PERIOD_VALUE)
            if designation is None and period is not None:
                designation = {"kind": "period", "value": period}
    if not _SCHEDULE_TRIGGERS.isdisjoint(vocabulary) and _SCHEDULE_RX.first(norm, words, offsets):
        inconvenient_time = True
        _record(matched, "time:schedule")
    momentary = False
    if (
        not inconvenient_time
        and not _MOMENT_TRIGGERS.isdisjoint(vocabulary)
        and _MOMENT_RX.first(norm, words, offsets)
    ):
        # "I'm busy / can't talk now" designates only the current moment (comment
        # 6(b)(1)-2 via the CFPB FAQ), not a standing inconvenient time.
        inconvenient_time = momentary = True
        designation = {"kind": "moment"}
        _record(matched, "time:moment")

    # (g) place designations, REGF-PLACE / REGF-WORK-PLACE.
    inconvenient_place = False
    if not _PLACE_TRIGGERS.isdisjoint(vocabulary):
        place_match = _PLACE_RX.first(norm, words, offsets)
        if place_match is not None:
            inconvenient_place = True
            _record(matched, "place")
            place = _value_of(
                _first_group(place_match, ("place", "place2", "place3", "place4")),
                _PLACE_VALUE,
            )
            if designation is None or momentary:
                designation = {"kind": "place", "value": place or "work"}

    ambiguous = ambiguous_signal and not clear_revocation
    revocation = revocation or ambiguous
    if revocation and media and not cease and _TCPA_MEDIA.isdisjoint(media):
        # Only email or letters named: a Reg F medium opt-out (1006.14(h)); the TCPA does
        # not reach those media, so it is not a TCPA revocation.
        revocation = False

    start = help_ = False
    if not revocation and not cease:
        whole = tuple(word for word in content if word not in _POLITE)
        if whole in _START_WORDS:
            start = True
            _record(matched, "start")
        elif whole in _HELP_WORDS:
            help_ = True
            _record(matched, "help")

    values = (
        revocation, bool(media), cease, dispute, attorney, bankruptcy, inconvenient_time,
        inconvenient_place, ambiguous, start, help_, momentary, media[0] if media else None,
        tuple(media), _language(text, words),
    )
    if designation is None:
        return _shared(*values, None, tuple(matched))
    return Classification(*values, designation, tuple(matched))


# Frozen results without a (mutable) designation are shared: most messages fall in a few
# hundred shapes, and building a frozen dataclass is a large part of the cost.
_shared: Final = functools.lru_cache(maxsize=4096)(Classification)
