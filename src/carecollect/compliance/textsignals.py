"""Inbound free-text signals (PLAT-REVOKE-NLU, TCPA-REVOKE-ANYMEANS).

Keyword revocations are matched here (per se reasonable under 47 CFR 64.1200(a)(10)): the
whole message or its leading token, case- and punctuation-insensitive. Other free text goes
to `carecollect.compliance.nlu.classify` when that module exists (imported lazily: it is
written separately); until then a small conservative phrase list stands in.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

STOP_WORDS = frozenset({"stop", "quit", "end", "revoke", "opt out", "optout", "cancel",
                        "unsubscribe", "stopall", "stop all"})
START_WORDS = frozenset({"start", "unstop", "resume"})
_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
# Fallback phrases, used only while the NLU module is absent (fail closed: broad on purpose).
_REVOKE_PHRASES = ("stop text", "stop call", "stop messag", "stop contact", "no more", "dont text",
                   "don't text", "do not text", "dont call", "don't call", "do not call",
                   "leave me alone", "remove me", "take me off", "stop emailing",
                   "dont email", "don't email", "do not email", "not interested")
_CEASE = ("cease", "stop contacting me", "never contact")
_DISPUTE = ("dispute", "not my debt", "don't owe", "dont owe", "do not owe", "wrong amount")
_ATTORNEY = ("attorney", "lawyer", "counsel")
_BANKRUPTCY = ("bankrupt", "chapter 7", "chapter 13")


@dataclasses.dataclass(frozen=True, slots=True)
class Signals:
    revocation: bool = False
    medium_optout: bool = False
    cease: bool = False
    dispute: bool = False
    attorney: bool = False
    bankruptcy: bool = False
    ambiguous: bool = False
    start: bool = False
    source: str = "none"


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


@functools.lru_cache(maxsize=1)
def _nlu() -> Any:
    try:
        from carecollect.compliance import nlu  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return getattr(nlu, "classify", None)


@functools.lru_cache(maxsize=8192)
def classify_text(text: str) -> Signals:
    norm = _normalize(text)
    if not norm:
        return Signals()
    first = norm.split(" ", 1)[0]
    if norm in STOP_WORDS or first in STOP_WORDS or norm in {"opt out"}:
        return Signals(revocation=True, medium_optout=True, source="keyword")
    if norm in START_WORDS:
        return Signals(start=True, source="keyword")
    classify = _nlu()
    if classify is not None:
        c = classify(text)
        return Signals(
            revocation=bool(getattr(c, "revocation", False)),
            medium_optout=bool(getattr(c, "medium_optout", False)),
            cease=bool(getattr(c, "cease", False)),
            dispute=bool(getattr(c, "dispute", False)),
            attorney=bool(getattr(c, "attorney", False)),
            bankruptcy=bool(getattr(c, "bankruptcy", False)),
            ambiguous=bool(getattr(c, "ambiguous", False)),
            start=bool(getattr(c, "start", False)),
            source="nlu",
        )
    low = " " + text.lower() + " "
    return Signals(
        revocation=any(p in low for p in _REVOKE_PHRASES),
        medium_optout=any(p in low for p in _REVOKE_PHRASES),
        cease=any(p in low for p in _CEASE),
        dispute=any(p in low for p in _DISPUTE),
        attorney=any(p in low for p in _ATTORNEY),
        bankruptcy=any(p in low for p in _BANKRUPTCY),
        source="fallback",
    )
