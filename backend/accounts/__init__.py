"""Accounts: register, obtain a token, delete the account (DRF token authentication)."""
