"""The REST API `/api/v1` and the web plumbing shared with the staff app (context, errors
as problem+json, security headers, metrics)."""
