"""Rule units, one module per regime. Each check returns None (pass) or a Finding.

Importing this package registers every check in CHECKS (rule id → function).
"""

from __future__ import annotations

from carecollect.compliance.rules import hipaa, medical, overlay_rules, platform, regf, state, tcpa  # noqa: F401
from carecollect.compliance.rules.base import CHECKS, Finding

__all__ = ["CHECKS", "Finding"]
