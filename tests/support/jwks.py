"""Signing keys and a real JWKS HTTP server, standing in for an identity provider in tests.

:class:`SigningKey` is a freshly generated RSA or P-256 key pair with a ``kid``; it mints
tokens and publishes its public half as a JWK. :class:`JwksServer` is a threaded
``http.server`` on a free loopback port that serves whatever key set the test gives it,
counts the requests, and can be switched to failing (500), hanging (holds the request
until released) or refusing connections (stopped). :func:`forged_hs256` and
:func:`unsigned` are the attacks every verifier must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from services.common.auth import mint_token


@dataclass
class SigningKey:
    """A key pair an identity provider signs with; ``algorithm`` is RS256 or ES256."""

    algorithm: str
    kid: str
    private: Any = field(repr=False)

    @classmethod
    def generate(cls, algorithm: str, kid: str) -> SigningKey:
        """A new RSA-2048 (RS256) or P-256 (ES256) key."""
        if algorithm == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        return cls(algorithm, kid, private)

    @property
    def public_pem(self) -> str:
        """The public key as PEM (what a service may hold)."""
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def private_pem(self) -> str:
        """The private key as PKCS#8 PEM (what only the identity provider holds)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK with ``kid``, ``alg`` and ``use``."""
        codec = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        data: dict[str, Any] = codec.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig", **extra}

    def token(self, service: str, *scopes: str, kid: str | None = None, **kw: Any) -> str:
        """A token for ``strata-<service>`` signed with this key (header ``kid`` by default)."""
        return mint_token(
            key=self.private,
            algorithm=self.algorithm,
            audience=f"strata-{service}",
            scopes=scopes,
            key_id=self.kid if kid is None else kid,
            **kw,
        )


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_hs256(secret: bytes, audience: str, alg: str = "HS256") -> str:
    """The key-confusion attack: an HS256 token whose HMAC secret is a public key (e.g. the
    service's PEM). Made by hand: PyJWT itself refuses a PEM as an HMAC secret."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    claims = b64url(
        json.dumps(
            {"sub": "intruder", "aud": audience, "scope": "ledger:admin", "exp": time.time() + 60}
        ).encode()
    )
    signature = hmac.new(secret, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def unsigned(audience: str, **header: Any) -> str:
    """An ``alg: none`` token with otherwise valid claims."""
    head = b64url(json.dumps({"alg": "none", "typ": "JWT", **header}).encode())
    claims = b64url(json.dumps({"sub": "x", "aud": audience, "exp": time.time() + 60}).encode())
    return f"{head}.{claims}."


def jwks(keys: Iterable[SigningKey]) -> dict[str, Any]:
    """A JWKS document publishing ``keys``."""
    return {"keys": [k.jwk() for k in keys]}


class JwksServer:
    """A real HTTP server for one JWKS document; thread-safe switches for failure modes."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._body = json.dumps(document or {"keys": []}).encode()
        self.mode = "ok"  # ok | error | hang
        self.requests = 0
        self.release = threading.Event()  # lets hanging requests finish
        self.arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.arrived:
                    server.requests += 1
                    server.arrived.notify_all()
                if server.mode == "hang":
                    server.release.wait(60)
                if server.mode == "error":
                    self.send_error(500)
                    return
                with server._lock:
                    body = server._body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def publish(self, keys: Iterable[SigningKey]) -> None:
        """Serve a JWKS with ``keys`` from the next request on (a rotation)."""
        body = json.dumps(jwks(keys)).encode()
        with self._lock:
            self._body = body

    def wait_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests arrived (or the timeout passed)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: self.requests >= count, timeout)

    def start(self) -> JwksServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (later connections are refused) and release hanging requests."""
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def jwks_server(keys: Iterable[SigningKey] = ()) -> Iterator[JwksServer]:
    """A started :class:`JwksServer` publishing ``keys``, stopped afterwards."""
    server = JwksServer(jwks(keys)).start()
    try:
        yield server
    finally:
        server.stop()
