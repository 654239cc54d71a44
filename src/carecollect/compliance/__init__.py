"""Compliance engine: RULES.md as code (pure, deterministic, no I/O).

Public API: `evaluate(context, overlay=None) -> Decision`, `parse_scenario(line)`,
`RULES` (metadata of every catalog rule), `OrgOverlay`, and the batch path in
`carecollect.compliance.batch`.
"""

from __future__ import annotations

from carecollect.compliance.engine import Decision, evaluate, evaluate_action
from carecollect.compliance.overlay import OrgOverlay, OverlayError
from carecollect.compliance.registry import BY_ID, RULES, RuleMeta
from carecollect.compliance.scenario import Context, Scenario, ScenarioError, parse_scenario

__all__ = [
    "BY_ID", "RULES", "Context", "Decision", "OrgOverlay", "OverlayError", "RuleMeta",
    "Scenario", "ScenarioError", "evaluate", "evaluate_action", "parse_scenario",
]
