"""What the ml service's OpenAPI document says about itself; its endpoints declare the rest."""

from __future__ import annotations

from services.common.openapi import ServiceInfo
from services.ml.api.errors import PROBLEM_TYPES

INFO = ServiceInfo(
    title="Strata ml",
    description="""JSON documents on PostgreSQL JSONB for machine-learning jobs.

HEAD is answered wherever GET is (same status and headers, no body). Every endpoint
refuses query parameters it does not take (422). Errors are RFC 9457 problem details.
Pages and samples are bounded in bytes as well as in documents: one stops early once its
documents' data reaches the service's page budget, and its next_cursor continues it.
At most a few exports stream at once per worker; one more is answered 429 with
Retry-After. Exports stream NDJSON (gzip when Accept-Encoding accepts it) or Parquet
(format=parquet, typed columns for the projected fields), resume after a document id
(after=), and read a held snapshot (POST .../export:snapshot) in disjoint shards
(snapshot=&shard=&shards=).""",
    problem_types=PROBLEM_TYPES,
)
