"""The authentication matrix of a service, derived from its own OpenAPI document.

Every operation that declares a ``bearer`` security requirement is called with each kind
of bad credential (none, expired, another service's audience, a foreign key, an unsigned
``alg: none`` token, a token lacking the operation's scopes) and must answer 401 or 403
problem+json; with exactly the scopes it declares it must get past authentication (any
answer but 401/403, and never a 5xx). Nothing here is specific to one service.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from services.common.auth import audience_for, mint_token
from services.common.settings import DEV_JWT_SECRET

FOREIGN_KEY = "a-key-no-strata-service-was-configured-with-0123456789"
#: Mints a token: ``signer(scopes, audience=..., [ttl=...], [key=<untrusted key>])``.
Signer = Callable[..., str]
#: A value every path parameter of the three services accepts (ids, names, keys).
PATH_VALUE = "authmatrix"


@dataclass(frozen=True)
class Operation:
    """One protected operation: method, concrete path and the scopes it needs."""

    method: str
    path: str
    scopes: tuple[str, ...]
    has_body: bool

    @property
    def name(self) -> str:
        """``METHOD /path`` (a readable test id)."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Credential:
    """One row of the matrix: how to authenticate and the status that must come back."""

    label: str
    authorization: str | None
    expected: int


def _path_value(schema: dict[str, Any]) -> str:
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    return PATH_VALUE


def protected_operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of ``document`` that requires a bearer token, paths filled in."""
    found: list[Operation] = []
    for template, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, spec in item.items():
            if method == "parameters" or not isinstance(spec, dict):
                continue
            requirement = [r for r in spec.get("security", []) if "bearer" in r]
            if not requirement:
                continue
            path = template
            for param in [*shared, *spec.get("parameters", [])]:
                if param.get("in") == "path":
                    path = path.replace(
                        "{" + param["name"] + "}", _path_value(param.get("schema", {}))
                    )
            found.append(
                Operation(
                    method.upper(),
                    path,
                    tuple(requirement[0]["bearer"]),
                    has_body="requestBody" in spec,
                )
            )
    return found


def all_scopes(document: dict[str, Any]) -> set[str]:
    """Every scope any operation of ``document`` declares."""
    return {scope for op in protected_operations(document) for scope in op.scopes}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(audience: str, scopes: set[str] | tuple[str, ...]) -> str:
    """An ``alg: none`` token with otherwise perfect claims (must never be accepted)."""
    now = int(time.time())
    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    claims = _b64(
        orjson.dumps(
            {"sub": "intruder", "aud": audience, "scope": " ".join(scopes), "exp": now + 600}
        )
    )
    return f"{header}.{claims}."


def dev_signer(grant: set[str] | tuple[str, ...], **kw: Any) -> str:
    """Mint with the development HS256 secret (``key=`` signs with another secret)."""
    return mint_token(key=kw.pop("key", DEV_JWT_SECRET), scopes=grant, **kw)


def credentials(
    service: str, op: Operation, scopes: set[str], signer: Signer = dev_signer
) -> Iterator[Credential]:
    """The matrix rows for one operation of ``service`` (which grants ``scopes`` in all).

    ``signer(scopes, audience=..., ttl=..., key=...)`` mints the service's tokens; ``key=``
    asks for a token signed by a key the service does not trust.
    """
    audience = audience_for(service)
    other = audience_for("cache" if service != "cache" else "critical")

    def bearer(token: str) -> str:
        return f"Bearer {token}"

    def token(grant: set[str] | tuple[str, ...], **kw: Any) -> str:
        return signer(grant, audience=kw.pop("audience", audience), **kw)

    yield Credential("no token", None, 401)
    yield Credential("expired", bearer(token(scopes, ttl=-3600)), 401)
    yield Credential("wrong audience", bearer(token(scopes, audience=other)), 401)
    yield Credential("wrong key", bearer(token(scopes, key=FOREIGN_KEY)), 401)
    yield Credential("alg none", bearer(unsigned_token(audience, scopes)), 401)
    yield Credential("missing scope", bearer(token(scopes - set(op.scopes))), 403)
    yield Credential("exact scope", bearer(token(op.scopes)), 0)


LABELS = (
    "no token",
    "expired",
    "wrong audience",
    "wrong key",
    "alg none",
    "missing scope",
    "exact scope",
)


def _problem_slug(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    return str(response.json().get("type", "")).rsplit(":", 1)[-1]


def matrix_failures(
    base_url: str, service: str, label: str, signer: Signer = dev_signer
) -> list[str]:
    """Call every protected operation with the credential ``label``; describe each wrong answer.

    An empty list means every operation answered as the matrix demands. The document is
    read from the running service, so a new operation is covered without touching a test.
    """
    with httpx.Client(base_url=base_url, timeout=10) as client:
        document = client.get("/openapi.json").raise_for_status().json()
        operations = protected_operations(document)
        if not operations:
            return [f"{service} declares no protected operation"]
        scopes = all_scopes(document)
        wrong: list[str] = []
        for op in operations:
            row = next(c for c in credentials(service, op, scopes, signer) if c.label == label)
            headers = {"Authorization": row.authorization} if row.authorization else {}
            response = client.request(
                op.method,
                op.path,
                headers={**headers, "Content-Type": "application/json"},
                content=b"{}" if op.has_body else None,
            )
            status, slug = response.status_code, _problem_slug(response)
            if row.expected == 0:
                if status in (401, 403) or status >= 500:
                    wrong.append(f"{op.name}: {status} with exactly {op.scopes}")
            elif status != row.expected:
                wrong.append(f"{op.name}: {status}, expected {row.expected}")
            elif row.expected == 401 and (
                slug != "unauthorized"
                or "bearer" not in response.headers.get("www-authenticate", "").lower()
            ):
                wrong.append(f"{op.name}: 401 without the Bearer challenge or problem+json")
            elif row.expected == 403 and slug != "insufficient-scope":
                wrong.append(f"{op.name}: 403 answered as {slug!r}")
        return wrong
