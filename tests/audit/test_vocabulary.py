"""Every audit action the code records is in the documented vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import carecollect
from carecollect.audit.vocabulary import ACTION_PATTERN, ACTIONS

SOURCE = Path(carecollect.__file__).resolve().parent
LITERAL = re.compile(r'action="([a-z_.]+)"')


def test_every_recorded_action_is_documented() -> None:
    recorded = {m.group(1) for path in SOURCE.rglob("*.py")
                for m in LITERAL.finditer(path.read_text(encoding="utf-8"))}
    assert len(recorded) > 50  # the scan found the code's actions
    assert sorted(a for a in recorded if a not in ACTIONS) == []
    assert all(ACTION_PATTERN.match(a) for a in ACTIONS)
