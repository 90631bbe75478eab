"""Bearer-token verification (PyJWT): algorithm, key, signature, expiry, audience, scopes.

Tokens are verified, never issued, by the services. :func:`mint_token` exists for
the developer CLI and the tests only. Keys: see ``keys`` (HS256 secret, PEM public key)
and ``jwks`` (an identity provider's JWKS URL).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from jwt.algorithms import AllowedPrivateKeys

from services.common.jwks import JwksKeys
from services.common.keys import KeySource, StaticKey, check_algorithms, load_public_key
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
    """Verifies bearer tokens for one audience with the algorithms and keys it is given.

    ``algorithms`` is the complete list this service accepts: a token whose header names
    any other (``none``, HS256 where RS256 is configured, ...) is refused before any key is
    looked at. ``wait_for_keys`` is how long a lookup may block for a JWKS fetch: the
    fetch timeout in threaded servers, 0 in an event loop (which awaits the fetch first,
    see :meth:`pending`).
    """

    def __init__(
        self,
        *,
        keys: KeySource,
        algorithms: Sequence[str],
        audience: str,
        issuer: str | None = None,
        leeway: int = 10,
        wait_for_keys: float = 0.0,
    ) -> None:
        check_algorithms(algorithms)
        self._keys = keys
        self._algorithms = list(algorithms)
        self.audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self.wait_for_keys = wait_for_keys

    @classmethod
    def hs256(cls, secret: str, audience: str, **kw: Any) -> TokenVerifier:
        """A verifier with one HS256 secret (development, tests)."""
        return cls(keys=StaticKey(secret), algorithms=["HS256"], audience=audience, **kw)

    @classmethod
    def for_service(
        cls, settings: ServiceSettings, service: str, *, blocking: bool = True
    ) -> TokenVerifier:
        """The verifier a service's settings describe (audience ``strata-<service>``).

        ``blocking=False`` for event loops: a lookup never waits for a JWKS fetch.
        """
        algorithms = settings.jwt_algorithms
        keys: KeySource
        if settings.jwt_jwks_url:
            keys = JwksKeys(
                settings.jwt_jwks_url,
                algorithms,
                cache_seconds=settings.jwt_jwks_cache_seconds,
                min_refresh_seconds=settings.jwt_jwks_min_refresh_seconds,
                timeout=settings.jwt_jwks_timeout_seconds,
            )
        elif settings.jwt_public_key:
            keys = StaticKey(load_public_key(settings.jwt_public_key, algorithms))
        else:
            keys = StaticKey(settings.jwt_key)
        return cls(
            keys=keys,
            algorithms=algorithms,
            audience=audience_for(service),
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            wait_for_keys=settings.jwt_jwks_timeout_seconds if blocking else 0.0,
        )

    def key_generation(self) -> int:
        """Changes when a signing key is withdrawn (cached principals must be re-checked).

        Also keeps a JWKS fresh: a stale key set starts a background refresh (never blocks).
        """
        return self._keys.current_generation()

    @property
    def key_timeout(self) -> float:
        """The longest a caller should wait for a future from :meth:`pending`."""
        return self._keys.timeout

    def warm(self) -> Future[bool] | None:
        """Start fetching the key set now (start-up) rather than on the first request."""
        return self._keys.pending(None) if self._keys.fetches else None

    def pending(self, authorization: str) -> Future[bool] | None:
        """The JWKS fetch this request's token needs before it can be verified, if any.

        Lets an event loop await the fetch (``asyncio.wrap_future``) instead of blocking in
        :meth:`verify`. ``None`` for configured keys, known ``kid`` values and anything that
        will fail anyway.
        """
        if not self._keys.fetches:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.isascii():
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") not in self._algorithms:
            return None
        return self._keys.pending(header.get("kid"))

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
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("token is invalid") from None
        # Checked before any key is chosen: "none", and HS256 signed with a public key.
        if header.get("alg") not in self._algorithms:
            raise unauthorized(f"token algorithm must be {' or '.join(self._algorithms)}")
        key = self._keys.key_for(header.get("kid"), self.wait_for_keys)
        if key is None:
            raise unauthorized(
                "token is signed with a key this service does not know"
                if self._keys.loaded
                else "the identity provider's signing keys could not be fetched yet; retry"
            )
        try:
            claims = jwt.decode(
                token,
                key,
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
    key: str | AllowedPrivateKeys,
    audience: str,
    scopes: Iterable[str],
    subject: str = "developer",
    ttl: int = 3600,
    algorithm: str = "HS256",
    issuer: str | None = None,
    key_id: str | None = None,
) -> str:
    """Mint a token (developer CLI and tests; services never issue tokens).

    ``key`` is the HS256 secret, or a private key (object or PEM) for RS256/ES256;
    ``key_id`` goes in the header as ``kid`` (how a JWKS consumer picks the key).
    """
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
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def audience_for(service: str) -> str:
    """The audience a service's tokens carry (``strata-<service>``)."""
    return f"strata-{service}"
