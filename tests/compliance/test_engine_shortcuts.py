"""The engine's cost shortcuts decide exactly what the plain path decides: re-evaluating
through Facts(when=...) equals deciding the copied context of at_time(); shared offsets
keep every instant, offset and ISO text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecollect.compliance.engine import _decide, _rules_for, at_time, evaluate
from carecollect.compliance.facts import Facts
from carecollect.compliance.scenario import _CONTEXT, parse_context, share_offsets
from tests.compliance.randomctx import random_input

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(1, 60 * 24 * 9))
def test_facts_when_decides_like_at_time(rnd: random.Random, minutes: int) -> None:
    ctx = parse_context(random_input(rnd))
    when = ctx.proposed_action.time + dt.timedelta(minutes=minutes)
    moved = at_time(ctx, when)
    plain = _decide(moved, None)
    f = Facts(ctx, None)
    shortcut = _decide(ctx, None, Facts(ctx, None, when, f.zones), _rules_for(ctx, f, None))
    assert shortcut == plain


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_shared_offsets_keep_every_timestamp(rnd: random.Random) -> None:
    data = random_input(rnd)
    validated = _CONTEXT.validate_json(json.dumps(data))  # validated, offsets not shared
    shared = share_offsets(validated)

    def stamps(value: object) -> list[dt.datetime]:
        if isinstance(value, dt.datetime):
            return [value]
        if isinstance(value, tuple):
            return [s for item in value for s in stamps(item)]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return [s for f in dataclasses.fields(value) for s in stamps(getattr(value, f.name))]
        return []

    before, after = stamps(validated), stamps(shared)
    assert len(before) == len(after) > 0
    for old, new in zip(before, after, strict=True):
        assert (new, new.utcoffset(), new.isoformat(), new.date()) == (
            old, old.utcoffset(), old.isoformat(), old.date())
    by_offset: dict[object, object] = {}
    for new in after:
        assert by_offset.setdefault(new.utcoffset(), new.tzinfo) is new.tzinfo
    assert evaluate(shared) == evaluate(validated)
