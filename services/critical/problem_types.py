"""The critical service's problem types: the one table from ledger refusals to problems,
and the problems its HTTP layer raises itself. The OpenAPI document's list is built from
both (:func:`services.common.problems.catalogue`), as ml's and cache's are.

These tables live outside ``services.critical.api`` (where ml and cache keep theirs)
because the endpoint declarations there read :data:`PROBLEM_TYPES` at import time: the
table must import nothing from ``api/``. The edge functions that use the refusal table
are in :mod:`services.critical.api.errors`.
"""

from __future__ import annotations

from services.common.problems import Refusal, catalogue
from services.critical import errors

#: Every refusal of the domain layer and the problem it is answered with.
PROBLEMS: dict[type[errors.LedgerError], Refusal] = {
    errors.AccountNotFoundError: Refusal(
        404,
        "account-not-found",
        "no customer account with that id (the external accounts are never addressable)",
    ),
    errors.TransferNotFoundError: Refusal(404, "transfer-not-found", "no transfer with that id"),
    errors.AccountNotActiveError: Refusal(
        409, "account-not-active", "an account of the movement is frozen or closed"
    ),
    errors.InsufficientFundsError: Refusal(
        409, "insufficient-funds", "the debited account's balance is below the amount"
    ),
    errors.AccountNotEmptyError: Refusal(
        409, "account-not-empty", "only an account with a zero balance can close"
    ),
    errors.VersionMismatchError: Refusal(
        412, "version-mismatch", "If-Match names another version than the current one"
    ),
    errors.IdempotencyKeyReuseError: Refusal(
        422,
        "idempotency-key-reuse",
        "this Idempotency-Key was used by the same subject for a different request",
    ),
    errors.CurrencyMismatchError: Refusal(
        422, "currency-mismatch", "the transfer's currency is not that of both accounts"
    ),
    errors.SameAccountError: Refusal(
        422, "same-account", "from_account and to_account are the same"
    ),
    errors.AmountOutOfRangeError: Refusal(
        422, "amount-out-of-range", "a resulting balance would not fit in a signed 64-bit integer"
    ),
}

#: The problems raised by the HTTP layer (gunicorn's parser, the request intake, the
#: handlers and the shared code they call), not by the ledger. The common ones are here
#: with critical's own words: its server (gunicorn and the intake) refuses more than the
#: Sanic services' does, and its document has always said so.
RAISED: tuple[Refusal, ...] = (
    Refusal(
        400,
        "bad-request",
        "the HTTP request itself is malformed (bad request line, a control character in a "
        "header, a broken chunked body)",
    ),
    Refusal(400, "malformed-json", "the body is empty, not JSON, or not UTF-8"),
    Refusal(
        400,
        "invalid-cursor",
        "the cursor is not one this listing issued (undecodable or wrong contents)",
    ),
    Refusal(400, "idempotency-key-missing", "POST /v1/transfers without an Idempotency-Key header"),
    Refusal(
        401,
        "unauthorized",
        "no bearer token, or one that is invalid, expired, for another audience, or whose "
        "subject cannot be stored (1..255 characters, no NUL)",
    ),
    Refusal(403, "insufficient-scope", "the token lacks the scope the operation needs"),
    Refusal(403, "forbidden", "a proxy-protocol request from an address not allowed"),
    Refusal(405, "method-not-allowed", "the route exists, not with this method (see Allow)"),
    Refusal(
        408,
        "request-timeout",
        "the request's head and body did not all arrive within STRATA_CRITICAL_"
        "REQUEST_READ_TIMEOUT (10 s) of its first byte; the connection is closed",
    ),
    Refusal(
        413,
        "payload-too-large",
        "the body is over the limit (1 MiB by default), with or without Content-Length; "
        "the connection is closed",
    ),
    Refusal(414, "uri-too-long", "the request line is over 8190 bytes"),
    Refusal(415, "unsupported-media-type", "the body is not application/json (or +json)"),
    Refusal(417, "expectation-failed", "an Expect header other than 100-continue"),
    Refusal(
        422,
        "validation-failed",
        "a field, path, query or header parameter is invalid; errors[] lists each with loc and msg",
    ),
    Refusal(
        431,
        "header-fields-too-large",
        "over 100 header fields, one over 8190 bytes, or a head over 64 KiB in all",
    ),
    Refusal(500, "internal-error", "a bug: nothing is disclosed; the request id is logged"),
    Refusal(
        501,
        "not-implemented",
        "an unknown Transfer-Encoding (e.g. br); misused known ones are 400 bad-request",
    ),
    Refusal(
        503,
        "store-unavailable",
        "PostgreSQL did not answer in time; retry after Retry-After seconds",
    ),
    Refusal(
        503,
        "server-busy",
        "the worker holds too many partly received requests (STRATA_CRITICAL_REQUEST_"
        "BUFFER_BYTES); retry after Retry-After seconds",
    ),
)

#: Every problem type the critical service answers: slug -> (status, meaning).
PROBLEM_TYPES = catalogue(RAISED, PROBLEMS.values())
