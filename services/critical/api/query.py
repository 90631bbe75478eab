"""Query parameters: an operation takes only those it declares, each once.

A misspelt parameter (``?limt=1``) was silently ignored, so the client believed it had
applied. The allowed names are the query parameters of the endpoint's declaration, so
the document and the check cannot disagree. Routes call :func:`check_query` right after
authenticating, as ml and cache do (401/403 first, then 422).
"""

from __future__ import annotations

from flask import request

from services.common.query import check_query as common_check
from services.critical.routing import declared


def check_query() -> None:
    """422 ``validation-failed`` naming each unknown or repeated query parameter."""
    if request.args:
        common_check(request.args.to_dict(flat=False), declared().query)
