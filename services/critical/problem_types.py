"""Every problem type the critical service can answer with: slug, status and meaning.

The OpenAPI document is built from this table (each response lists exactly the slugs it
may carry), and a test checks that every slug raised in the code is in it.
"""

from __future__ import annotations

from typing import NamedTuple


class ProblemType(NamedTuple):
    """One ``urn:strata:problem:<slug>``."""

    status: int
    meaning: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad-request": ProblemType(
        400,
        "the HTTP request itself is malformed (bad request line, a control character in a "
        "header, a broken chunked body)",
    ),
    "malformed-json": ProblemType(400, "the body is empty, not JSON, or not UTF-8"),
    "invalid-cursor": ProblemType(
        400, "the cursor is not one this listing issued (undecodable or wrong contents)"
    ),
    "idempotency-key-missing": ProblemType(
        400, "POST /v1/transfers without an Idempotency-Key header"
    ),
    "unauthorized": ProblemType(
        401,
        "no bearer token, or one that is invalid, expired, for another audience, or whose "
        "subject cannot be stored (1..255 characters, no NUL)",
    ),
    "insufficient-scope": ProblemType(403, "the token lacks the scope the operation needs"),
    "forbidden": ProblemType(403, "a proxy-protocol request from an address not allowed"),
    "not-found": ProblemType(404, "no such route"),
    "account-not-found": ProblemType(
        404, "no customer account with that id (the external accounts are never addressable)"
    ),
    "transfer-not-found": ProblemType(404, "no transfer with that id"),
    "method-not-allowed": ProblemType(405, "the route exists, not with this method (see Allow)"),
    "request-timeout": ProblemType(
        408,
        "the request's head and body did not all arrive within STRATA_CRITICAL_"
        "REQUEST_READ_TIMEOUT (10 s) of its first byte; the connection is closed",
    ),
    "account-not-active": ProblemType(409, "an account of the movement is frozen or closed"),
    "insufficient-funds": ProblemType(409, "the debited account's balance is below the amount"),
    "account-not-empty": ProblemType(409, "only an account with a zero balance can close"),
    "version-mismatch": ProblemType(412, "If-Match names another version than the current one"),
    "payload-too-large": ProblemType(
        413,
        "the body is over the limit (1 MiB by default), with or without Content-Length; "
        "the connection is closed",
    ),
    "uri-too-long": ProblemType(414, "the request line is over 8190 bytes"),
    "unsupported-media-type": ProblemType(415, "the body is not application/json (or +json)"),
    "expectation-failed": ProblemType(417, "an Expect header other than 100-continue"),
    "validation-failed": ProblemType(
        422,
        "a field, path, query or header parameter is invalid; errors[] lists each with loc and msg",
    ),
    "idempotency-key-reuse": ProblemType(
        422, "this Idempotency-Key was used by the same subject for a different request"
    ),
    "currency-mismatch": ProblemType(422, "the transfer's currency is not that of both accounts"),
    "same-account": ProblemType(422, "from_account and to_account are the same"),
    "amount-out-of-range": ProblemType(
        422, "a resulting balance would not fit in a signed 64-bit integer"
    ),
    "header-fields-too-large": ProblemType(
        431, "over 100 header fields, one over 8190 bytes, or a head over 64 KiB in all"
    ),
    "internal-error": ProblemType(500, "a bug: nothing is disclosed; the request id is logged"),
    "not-implemented": ProblemType(
        501, "an unknown Transfer-Encoding (e.g. br); misused known ones are 400 bad-request"
    ),
    "store-unavailable": ProblemType(
        503, "PostgreSQL did not answer in time; retry after Retry-After seconds"
    ),
    "server-busy": ProblemType(
        503,
        "the worker holds too many partly received requests (STRATA_CRITICAL_REQUEST_"
        "BUFFER_BYTES); retry after Retry-After seconds",
    ),
}
