"""The one table from document-store refusals to problem types (status and slug)."""

from __future__ import annotations

from services.common.problems import Problem, refused
from services.ml import errors

#: Every refusal of the store and the problem it is answered with.
PROBLEMS: dict[type[errors.StoreError], tuple[int, str]] = {
    errors.CollectionNotFoundError: (404, "collection-not-found"),
    errors.DocumentNotFoundError: (404, "document-not-found"),
    errors.DocumentExistsError: (409, "document-exists"),
    errors.VersionMismatchError: (412, "version-mismatch"),
    errors.StoreUnavailableError: (503, "store-unavailable"),
}


def problem(error: BaseException) -> Problem | None:
    """The problem a store refusal is answered with; None for anything else."""
    headers = {}
    if isinstance(error, errors.VersionMismatchError):
        headers["ETag"] = f'"{error.current}"'  # the version to send in If-Match next
    elif isinstance(error, errors.StoreUnavailableError):
        headers["Retry-After"] = "1"
    return refused(error, PROBLEMS, headers)
