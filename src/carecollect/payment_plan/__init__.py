"""Payment plans: organization policies, exact-cent schedules, autopay with retries, grace,
missed-payment notices, default, hardship pause, early payoff, re-planning and the plan
agreement PDF (docs/PAYMENTS.md)."""
