"""What the Strata services share: settings, auth, problems, logging, metrics and health.

Most of it is framework-neutral. The framework glue lives in modules of its own, each
imported only by the services on that framework: ``sanic_support``, ``sanic_routes`` and
``sanic_runner`` (Sanic: ml, cache), ``orm`` (SQLAlchemy: critical, ml). The critical
image has no Sanic, the cache image no SQLAlchemy.
"""
