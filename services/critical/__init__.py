"""The critical service: an accounts-and-transfers ledger on Flask, SQLAlchemy 2 and PostgreSQL."""
