"""Organizations (tenants), their locations and their business associates."""
