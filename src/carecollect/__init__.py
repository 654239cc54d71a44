"""carecollect: first-party patient collections with compliance guardrails."""

__version__ = "0.1.0"
