"""Bearer-token verification (PyJWT): signature, expiry, audience, then scopes.

Tokens are verified, never issued, by the services. :func:`mint_token` exists for
the developer CLI and the tests only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from services.common.problems import Problem

if TYPE_CHECKING:
    from services.common.settings import ServiceSettings

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strata"'}
#: Longest token subject accepted: it is stored with idempotency keys and audit rows.
MAX_SUBJECT_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token subject and the scopes it was granted."""

    subject: str
    scopes: frozenset[str]
    expires_at: float

    def require(self, *scopes: str) -> None:
        """Raise 403 unless every scope is granted."""
        missing = [s for s in scopes if s not in self.scopes]
        if missing:
            raise Problem(
                403,
                "insufficient-scope",
                f"token lacks scope: {' '.join(missing)}",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", '
                    f'scope="{" ".join(missing)}"'
                },
            )


def unauthorized(detail: str) -> Problem:
    """401 with the Bearer challenge."""
    return Problem(401, "unauthorized", detail, headers=_CHALLENGE)


class TokenVerifier:
    """Verifies bearer tokens for one audience with an HS256 secret or an RS256 public key."""

    def __init__(
        self,
        *,
        key: str,
        algorithm: str,
        audience: str,
        issuer: str | None = None,
        leeway: int = 10,
    ) -> None:
        self._key = key
        self._algorithms = [algorithm]
        self.audience = audience
        self._issuer = issuer
        self._leeway = leeway

    @classmethod
    def for_service(cls, settings: ServiceSettings, service: str) -> TokenVerifier:
        """The verifier a service's settings describe (audience ``strata-<service>``)."""
        return cls(
            key=settings.jwt_key,
            algorithm=settings.jwt_algorithm,
            audience=audience_for(service),
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
        )

    def verify_header(self, authorization: str | None) -> Principal:
        """Verify an ``Authorization`` header value; raise 401 problems on any failure."""
        if not authorization:
            raise unauthorized("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("authorization header must be 'Bearer <token>'")
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        """Verify a raw JWT; its ``sub`` must be 1..255 characters."""
        # A JWT is base64url and dots. Servers hand over header bytes that are not UTF-8
        # as surrogate escapes, which PyJWT cannot encode: refuse them here, as a 401.
        if not token.isascii():
            raise unauthorized("token is invalid: it must be ASCII (base64url and dots)")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self.audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token has expired") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"token audience is not {self.audience}") from None
        except jwt.PyJWTError:
            raise unauthorized("token is invalid") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise unauthorized("token scope claim must be a string")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
            raise unauthorized(
                f"token subject (sub) must be 1..{MAX_SUBJECT_LENGTH} characters, not blank"
            )
        return Principal(
            subject=subject,
            scopes=frozenset(scope.split()),
            expires_at=float(claims["exp"]),
        )


def mint_token(
    *,
    key: str,
    audience: str,
    scopes: Iterable[str],
    subject: str = "developer",
    ttl: int = 3600,
    algorithm: str = "HS256",
    issuer: str | None = None,
) -> str:
    """Mint a token (developer CLI and tests; services never issue tokens)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject,
        "aud": audience,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, key, algorithm=algorithm)


def audience_for(service: str) -> str:
    """The audience a service's tokens carry (``strata-<service>``)."""
    return f"strata-{service}"
