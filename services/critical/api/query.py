"""Query parameters: an operation takes only those its OpenAPI entry lists, each once.

A misspelt parameter (``?limt=1``) was silently ignored, so the client believed it had
applied. The allowed names come from the OpenAPI operations, so the document and the
check cannot disagree. Routes call :func:`check_query` right after authenticating, as
ml and cache do (401/403 first, then 422).
"""

from __future__ import annotations

import re

from flask import request

from services.common.query import check_query as common_check
from services.critical.openapi import ENDPOINTS


def _flask_rule(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


#: (method, Flask rule) -> the query parameters the operation takes.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    (e.operation.method, _flask_rule(e.operation.path)): frozenset(
        p.name for p in e.operation.params if p.location == "query"
    )
    for e in ENDPOINTS
}


def check_query() -> None:
    """422 ``validation-failed`` naming each unknown or repeated query parameter."""
    if not request.args:
        return
    rule = request.url_rule.rule if request.url_rule is not None else ""
    method = "GET" if request.method == "HEAD" else request.method
    common_check(request.args.to_dict(flat=False), ALLOWED.get((method, rule), frozenset()))
