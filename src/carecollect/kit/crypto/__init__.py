"""Envelope encryption of PHI fields, key providers, blind indexes, rotation and shredding."""
