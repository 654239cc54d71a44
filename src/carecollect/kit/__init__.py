"""Shared infrastructure for carecollect: no business rules live here."""
