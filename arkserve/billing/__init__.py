"""Billing: pay-as-you-go metering into an append-only ledger, balances, prepaid instances, quotas, statements."""
