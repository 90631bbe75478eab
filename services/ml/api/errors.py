"""The ml service's problem types: the one table from document-store refusals to
problems, and the problems its handlers raise themselves. The OpenAPI document's list is
built from both (:func:`services.common.problems.catalogue`)."""

from __future__ import annotations

from services.common.problems import Problem, Refusal, catalogue, refused
from services.ml import errors

#: Every refusal of the store and the problem it is answered with.
PROBLEMS: dict[type[errors.StoreError], Refusal] = {
    errors.CollectionNotFoundError: Refusal(
        404, "collection-not-found", "no collection of that name"
    ),
    errors.DocumentNotFoundError: Refusal(
        404, "document-not-found", "no document of that id in the collection"
    ),
    errors.DocumentExistsError: Refusal(
        409, "document-exists", "a document with that id already exists"
    ),
    errors.VersionMismatchError: Refusal(
        412, "version-mismatch", "If-Match names another version; ETag carries the current one"
    ),
    errors.StoreUnavailableError: Refusal(503, "store-unavailable"),
    errors.SnapshotGoneError: Refusal(
        410, "snapshot-expired", "the export's snapshot is no longer held; take a new one"
    ),
    errors.ResumePointGoneError: Refusal(
        409, "resume-point-gone", "the document to resume after is not in this snapshot"
    ),
}

#: The problems raised by the handlers (and the shared code they call), not by the store.
RAISED: tuple[Refusal, ...] = (
    Refusal(400, "invalid-cursor", "the cursor does not decode to a position this listing made"),
    Refusal(
        413,
        "payload-too-large",
        "the body, a bulk body (bytes or documents) or a document's data is over its limit",
    ),
    Refusal(400, "invalid-snapshot", "the snapshot token is not one this service issued"),
    Refusal(
        429,
        "too-many-snapshots",
        "the worker already holds as many snapshots as it may; retry after Retry-After seconds",
    ),
    Refusal(
        429,
        "too-many-exports",
        "the worker already streams as many exports as it may; retry after Retry-After seconds",
    ),
)

#: Every problem type the ml service answers: slug -> (status, meaning).
PROBLEM_TYPES = catalogue(RAISED, PROBLEMS.values())


def problem(error: BaseException) -> Problem | None:
    """The problem a store refusal is answered with; None for anything else."""
    headers = {}
    if isinstance(error, errors.VersionMismatchError):
        headers["ETag"] = f'"{error.current}"'  # the version to send in If-Match next
    elif isinstance(error, errors.StoreUnavailableError):
        headers["Retry-After"] = "1"
    return refused(error, PROBLEMS, headers)
