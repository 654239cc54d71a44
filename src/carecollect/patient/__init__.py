"""Guarantors, patients, contact points and the flags on them."""
