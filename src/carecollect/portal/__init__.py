"""Patient portal at /pay: opaque link tokens, identity check, bill, pay, plans."""
