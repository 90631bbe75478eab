"""Which token algorithms a service accepts, and the public keys it checks them with.

HS256 (one shared secret) is for development. RS256 and ES256 verify with a public key that
cannot sign, so a compromised service holds nothing that mints tokens for another one. A
public key is bound to the one algorithm it verifies (an RSA key to RS256, a P-256 key to
ES256): PyJWT then refuses a token whose header names any other algorithm for it.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import Future
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SYMMETRIC = frozenset({"HS256"})
ASYMMETRIC = frozenset({"RS256", "ES256"})
SUPPORTED = ("HS256", "RS256", "ES256")
#: Smaller RSA keys are refused, from a PEM or from a JWKS.
MIN_RSA_BITS = 2048


def check_algorithms(algorithms: Collection[str]) -> None:
    """Refuse an empty list, or HS256 next to an asymmetric algorithm.

    Accepting HS256 beside RS256 would let anyone who can read the public key sign HS256
    tokens with it (the classic key-confusion attack), and a shared secret next to an
    identity provider's keys would defeat the point of having one.
    """
    if not algorithms:
        raise ValueError(f"jwt_algorithms must name at least one of {', '.join(SUPPORTED)}")
    if set(algorithms) & SYMMETRIC and set(algorithms) & ASYMMETRIC:
        raise ValueError(
            "jwt_algorithms must not mix HS256 with RS256/ES256: HS256 (development) uses a "
            "shared secret, RS256/ES256 (production) an identity provider's public keys"
        )


def algorithm_of(key: Any) -> str:
    """The one algorithm a public key verifies: RS256 for RSA, ES256 for EC P-256."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits, not {key.key_size}")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"EC keys must be on P-256 for ES256, not {key.curve.name}")
        return "ES256"
    raise ValueError(f"unsupported public key type {type(key).__name__}: use RSA or EC P-256")


def load_public_key(pem: str, algorithms: Collection[str]) -> PyJWK:
    """Parse a PEM public key (or certificate) and bind it to its algorithm.

    Raises ``ValueError`` with a message fit for a start-up error: a private key (a
    service must never hold one), text that is not PEM, a key of a type or size not
    accepted, or a key whose algorithm ``algorithms`` does not name.
    """
    text = pem.strip()
    if "PRIVATE KEY" in text:
        raise ValueError(
            "jwt_public_key holds a PRIVATE key: give the service only the public key "
            "(openssl pkey -in private.pem -pubout); a service must hold nothing that can sign"
        )
    try:
        if "BEGIN CERTIFICATE" in text:
            key: Any = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            "jwt_public_key is not a PEM public key ('-----BEGIN PUBLIC KEY-----' ...)"
        ) from None
    algorithm = algorithm_of(key)
    if algorithm not in algorithms:
        raise ValueError(
            f"jwt_public_key verifies {algorithm} tokens, but jwt_algorithms is "
            f"{','.join(algorithms)}"
        )
    codec = RSAAlgorithm if algorithm == "RS256" else ECAlgorithm
    return PyJWK(codec.to_jwk(key, as_dict=True), algorithm)


def usable(jwk: PyJWK, algorithms: Collection[str]) -> bool:
    """Whether a key from a JWKS may verify tokens here.

    A signing key (``use`` absent or ``sig``) of an accepted algorithm, RSA keys at least
    :data:`MIN_RSA_BITS`. Symmetric (``oct``) keys in a JWKS are never accepted, since
    :func:`check_algorithms` keeps HS256 away from JWKS configurations.
    """
    if jwk.public_key_use not in (None, "sig") or jwk.algorithm_name not in algorithms:
        return False
    if jwk.algorithm_name not in ASYMMETRIC:
        return False
    try:
        return algorithm_of(jwk.key) == jwk.algorithm_name
    except ValueError:
        return False


class KeySource(Protocol):
    """Where a verifier finds the key for a token's ``kid``."""

    #: Changes when a key is withdrawn, so cached verifications are redone.
    generation: int
    #: Whether keys come from the network (then a lookup may have to wait for a fetch).
    fetches: bool
    #: The longest one fetch takes (0 when nothing is fetched).
    timeout: float

    @property
    def loaded(self) -> bool:
        """Whether any key is known."""
        ...

    def current_generation(self) -> int:
        """:attr:`generation`, after starting a background refresh if the keys are stale."""
        ...

    def key_for(self, kid: str | None, wait: float) -> str | PyJWK | None:
        """The key for ``kid``, waiting at most ``wait`` seconds for one to arrive."""
        ...

    def pending(self, kid: str | None) -> Future[bool] | None:
        """A fetch to wait for before ``kid`` can be found, or ``None``."""
        ...


class StaticKey:
    """One configured key for every token: the HS256 secret or a bound public key."""

    generation = 0
    fetches = False
    timeout = 0.0
    loaded = True

    def __init__(self, key: str | PyJWK) -> None:
        self._key = key

    def current_generation(self) -> int:
        """Always 0: a configured key never changes while the process runs."""
        return 0

    def key_for(self, kid: str | None, wait: float) -> str | PyJWK:
        """The key (the token's ``kid`` does not matter)."""
        return self._key

    def pending(self, kid: str | None) -> None:
        """Nothing to wait for."""
