"""Insights: metrics computed from the ledger, outreach and consent records."""
