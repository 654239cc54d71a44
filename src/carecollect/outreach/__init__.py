"""Outreach: contact history now; cadences, templates and sending in later work."""
