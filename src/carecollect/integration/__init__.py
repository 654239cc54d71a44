"""Integrations: signed outbound webhooks to the practice's systems."""
