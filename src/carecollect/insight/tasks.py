"""Job handlers of the insights domain (scheduled monthly report)."""

from __future__ import annotations
