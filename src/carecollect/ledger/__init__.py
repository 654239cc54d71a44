"""Patient accounts and their ledgers; balances and aging are derived, never stored."""
