"""Everything that talks to PostgreSQL. Routes call these functions and nothing else."""

from services.ml.store.engine import Store

__all__ = ["Store"]
