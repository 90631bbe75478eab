"""The ml service: JSON documents on PostgreSQL JSONB, served by Sanic, built for bulk ML reads."""
