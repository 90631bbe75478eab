"""The local developer stack: throwaway PostgreSQL and Redis servers, the ``strata`` CLI.

Used by ``make run`` and by the integration tests, never by a deployed service.
"""
