"""Identity: staff users, MFA, sessions, roles and permissions, API keys, break-glass."""
