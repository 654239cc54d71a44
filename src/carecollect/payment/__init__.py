"""Payments: the processor interface and its adapters (Stripe, sandbox), posting payments,
refunds and chargebacks to the ledger with allocation, webhooks and receipts
(ARCHITECTURE.md section 8; docs/PAYMENTS.md)."""
