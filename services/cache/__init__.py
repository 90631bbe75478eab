"""The cache service: key-value and counters on Redis, served by Sanic (speed first).

Importing this package has no side effects; ``python -m services.cache serve`` runs it.
"""
