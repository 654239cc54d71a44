"""Job handlers of the integration domain (outbound webhook delivery)."""

from __future__ import annotations
