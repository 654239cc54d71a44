"""Tests for the inbound free-text classifier (PLAT-REVOKE-NLU).

Every line of `nlu_corpus.jsonl` is checked exactly (every flag, medium, language and
designation); hypothesis checks determinism and the per se keyword rule of
TCPA-REVOKE-ANYMEANS (64.1200(a)(10)).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.compliance import nlu as nlu_module
from carecollect.compliance.nlu import (
    PER_SE_KEYWORDS_EN,
    PER_SE_KEYWORDS_ES,
    Classification,
    classify,
    normalize,
)

CORPUS_PATH = Path(__file__).with_name("nlu_corpus.jsonl")
FLAGS = (
    "revocation", "medium_optout", "cease", "dispute", "attorney", "bankruptcy",
    "inconvenient_time", "inconvenient_place", "ambiguous", "start", "help", "momentary",
)


def _load_corpus() -> list[dict[str, Any]]:
    with CORPUS_PATH.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


CORPUS = _load_corpus()


def _observed(result: Classification) -> dict[str, Any]:
    return {
        "flags": sorted(name for name in FLAGS if getattr(result, name)),
        "medium": result.medium,
        "language": result.language,
        "designation": result.designation,
    }


def test_corpus_is_large_and_bilingual() -> None:
    languages = [case["language"] for case in CORPUS]
    assert len(CORPUS) >= 200
    assert languages.count("en") >= 100
    assert languages.count("es") >= 50
    assert len({case["text"] for case in CORPUS}) == len(CORPUS)
    for case in CORPUS:
        assert set(case["flags"]) <= set(FLAGS)


@pytest.mark.parametrize("case", CORPUS, ids=[f"line{i + 1}" for i in range(len(CORPUS))])
def test_corpus_line(case: dict[str, Any]) -> None:
    result = classify(case["text"])
    expected = {
        "flags": sorted(case["flags"]),
        "medium": case["medium"],
        "language": case["language"],
        "designation": case["designation"],
    }
    assert _observed(result) == expected
    flags = set(case["flags"])
    assert result.needs_human_review is bool(flags & {"cease", "dispute", "attorney",
                                                      "bankruptcy"})
    assert result.suppresses_channel is bool(flags & {"revocation", "medium_optout",
                                                      "ambiguous"})
    assert (result.medium is None) is (result.media == ())
    if flags:
        assert result.matched != ()


def test_ambiguous_is_always_a_revocation() -> None:
    for case in CORPUS:
        result = classify(case["text"])
        if result.ambiguous:
            assert result.revocation is True
            assert result.suppresses_channel is True


def test_media_lists_every_named_medium_in_order() -> None:
    result = classify("Stop texting and calling me")
    assert result.media == ("sms", "call")
    assert result.medium == "sms"
    assert result.medium_optout is True


def test_email_only_optout_is_not_a_tcpa_revocation() -> None:
    result = classify("Stop emailing me")
    assert (result.revocation, result.medium_optout, result.medium) == (False, True, "email")
    assert result.suppresses_channel is True


def test_matched_labels_never_contain_the_text() -> None:
    text = "Stop texting me, this is Maria Lopez at 555-0100, I filed chapter 7"
    result = classify(text)
    assert result.matched == (
        "revocation:stop_contact", "revocation:per_se", "bankruptcy",
    )
    for label in result.matched:
        assert "maria" not in label.lower()
        assert "555" not in label


def test_result_is_frozen() -> None:
    result = classify("STOP")
    with pytest.raises(AttributeError):
        result.revocation = False  # type: ignore[misc]


def test_normalize_folds_case_accents_apostrophes_and_punctuation() -> None:
    assert normalize("  ¡NO MÁS   Mensajes!!! ") == "no mas mensajes ."
    assert normalize("Don\u2019t e-mail me\u2026") == "dont email me ."
    assert normalize("Call after 9 p.m.") == "call after 9 pm"


def test_long_text_is_classified() -> None:
    filler = "I have a question about my statement. " * 500
    assert classify(filler + "Please stop texting me.").revocation is True
    assert classify(filler).revocation is False


# ------------------------------------------------------------------ properties

ALL_KEYWORDS = PER_SE_KEYWORDS_EN + PER_SE_KEYWORDS_ES
_SURROUND = st.text(alphabet=string.punctuation + " \t\n\u00a1\u00bf\u2026", max_size=6)


def _random_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(ch.upper() if flip else ch for ch, flip in zip(word, flips, strict=True))


@st.composite
def _decorated_keyword(draw: st.DrawFn) -> tuple[str, str]:
    keyword = draw(st.sampled_from(ALL_KEYWORDS))
    text = draw(_SURROUND) + _random_case(draw, keyword) + draw(_SURROUND)
    return keyword, text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_classification_is_deterministic(text: str) -> None:
    first = classify(text)
    assert classify(text) == first
    assert classify(str(text)) == first


@settings(max_examples=300, deadline=None)
@given(_decorated_keyword())
def test_surrounding_case_whitespace_punctuation_change_nothing(
    pair: tuple[str, str],
) -> None:
    keyword, decorated = pair
    assert classify(decorated) == classify(keyword)
    assert classify(decorated).revocation is True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_KEYWORDS), st.sampled_from(["", "please", "now", "thanks"]))
def test_normalized_per_se_keyword_is_a_revocation(keyword: str, tail: str) -> None:
    text = f"{keyword} {tail}".strip()
    result = classify(text)
    assert result.revocation is True
    assert result.ambiguous is False
    assert result.start is False


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " .,!?'", max_size=80))
def test_any_text_whose_normalized_form_is_a_keyword_revokes(text: str) -> None:
    if normalize(text).replace(".", " ").split() in [k.split() for k in ALL_KEYWORDS]:
        assert classify(text).revocation is True


def test_every_normalized_keyword_form_revokes() -> None:
    for keyword in ALL_KEYWORDS:
        assert classify(normalize(keyword)).revocation is True, keyword
        assert classify(keyword.upper()).revocation is True, keyword


# ------------------------------------------------------------- index consistency
# White-box: the classifier tries each pattern only at its start words and only when a
# required word is present. A whole-string search must never find a match the index skips.


def _index_gaps(text: str) -> list[str]:
    norm = nlu_module.normalize(text)
    words = [w for w in norm.split() if w != "."]
    vocabulary = set(words)
    gaps: list[str] = []
    rules = [
        *nlu_module._REVOCATION_RULES, *nlu_module._CEASE_ONLY_RULES,
        nlu_module._DISPUTE_RULE, nlu_module._ATTORNEY_RULE, nlu_module._BANKRUPTCY_RULE,
        nlu_module._AMBIGUOUS_RULE,
    ]
    for rule in rules:
        for match in rule.pattern.finditer(norm):
            first = norm[match.start():].split(" ", 1)[0]
            if first not in rule.starts:
                gaps.append(f"{rule.label}: start {first!r}")
            if rule.requires and rule.requires.isdisjoint(vocabulary):
                gaps.append(f"{rule.label}: requires")
    finders = {
        name: getattr(nlu_module, name)
        for name in ("_TIME_NEG_RX", "_TIME_NOT_RX", "_TIME_POS_RX", "_TIME_BETWEEN_RX",
                     "_DAY_RX", "_PERIOD_RX", "_SCHEDULE_RX", "_MOMENT_RX", "_PLACE_RX")
    }
    for name, finder in finders.items():
        for match in finder.pattern.finditer(norm):
            first = norm[match.start():].split(" ", 1)[0]
            if first not in finder.words and not first.startswith(finder.prefixes or ("\0",)):
                gaps.append(f"{name}: start {first!r}")
    return gaps


def test_start_word_index_misses_nothing_on_the_corpus() -> None:
    gaps = {case["text"]: _index_gaps(case["text"]) for case in CORPUS}
    assert {text: found for text, found in gaps.items() if found} == {}


_VOCABULARY = sorted(
    {word for case in CORPUS for word in nlu_module.normalize(case["text"]).split()}
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=12))
def test_start_word_index_misses_nothing_on_random_word_salad(words: list[str]) -> None:
    assert _index_gaps(" ".join(words)) == []
