"""The consent ledger: consents with evidence, revocations, re-consent."""
