"""An identity provider's signing keys from its JWKS URL, fetched off the request path.

Why not PyJWT's ``PyJWKClient``: it fetches inside the caller's thread while holding one
lock (a slow identity provider stalls every request thread of a gthread worker, and the
event loop of a Sanic worker), drops its cached key set once it expires even when the
refetch fails, and lets every unknown ``kid`` retry a failing endpoint. Here:

- one fetch at a time runs in a background thread; callers wait for it at most
  ``timeout`` seconds (threads with :meth:`JwksKeys.key_for`, coroutines by awaiting the
  future :meth:`JwksKeys.pending` returns), or not at all;
- the key set is cached for ``cache_seconds``; a stale set keeps serving while one
  refetch runs, and the last good set keeps serving while the endpoint is down;
- a fetch starts at most ``min_refresh_seconds`` after the previous one started and ended,
  whatever the reason (stale set, unknown ``kid``, retry after a failure), so tokens with
  random ``kid`` values cannot make the service hammer the identity provider;
- a fetch is bounded: connect and read timeouts, a total deadline, a size limit, no
  redirects.

Keys are parsed with PyJWT's ``PyJWKSet`` and kept only if :func:`keys.usable`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_future
from dataclasses import dataclass, field
from typing import Any

from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError

from services.common.keys import usable

logger = logging.getLogger("strata.auth")

#: A JWKS larger than this is refused (real ones are a few KiB).
MAX_JWKS_BYTES = 1 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the configured URL is the only place keys come from."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_get(url: str, timeout: float, max_bytes: int = MAX_JWKS_BYTES) -> bytes:
    """GET ``url`` with a connect/read timeout, a total deadline and a size limit."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the settings
        url, headers={"Accept": "application/json", "User-Agent": "strata-jwks"}
    )
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(request, timeout=timeout) as response:
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"JWKS is larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"JWKS download took longer than {timeout}s")
            chunks.append(chunk)
    return b"".join(chunks)


def parse_key_set(body: bytes, algorithms: Collection[str]) -> dict[str | None, PyJWK]:
    """The usable signing keys of a JWKS document, by ``kid``.

    Raises ``ValueError`` when the document is not a JWKS or holds no usable key: the
    caller then keeps its last good set rather than forgetting every key.
    """
    try:
        document = json.loads(body)
        key_set = PyJWKSet.from_dict(document if isinstance(document, dict) else {})
    except (ValueError, PyJWKSetError) as exc:
        raise ValueError(f"not a JWKS with usable keys: {exc}") from None
    keys = {jwk.key_id: jwk for jwk in key_set.keys if usable(jwk, algorithms)}
    if None in keys and len(keys) > 1:
        del keys[None]  # a key without kid can only be chosen when it is the only one
    if not keys:
        raise ValueError(f"the JWKS holds no signing key for {', '.join(sorted(algorithms))}")
    return keys


@dataclass(frozen=True)
class _KeySet:
    keys: Mapping[str | None, PyJWK] = field(default_factory=dict)
    fingerprints: Mapping[str | None, str] = field(default_factory=dict)
    fetched_at: float | None = None


class JwksKeys:
    """The signing keys published at ``url``, kept fresh in the background.

    Safe to share between threads; safe across ``fork`` (a child starts its own fetches).
    """

    def __init__(
        self,
        url: str,
        algorithms: Collection[str],
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        timeout: float = 2.0,
        fetch: Callable[[], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.fetches = True
        self.timeout = timeout
        self._algorithms = frozenset(algorithms)
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._fetch = fetch or (lambda: http_get(url, timeout))
        self._clock = clock
        self._set = _KeySet()
        # Bumped when a key disappears or changes, so cached verifications are redone.
        self.generation = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._inflight: Future[bool] | None = None
        self._attempted_at: float | None = None

    @property
    def loaded(self) -> bool:
        """Whether a key set was ever fetched."""
        return self._set.fetched_at is not None

    def lookup(self, kid: str | None) -> PyJWK | None:
        """The key for ``kid`` from the current set (never blocks, never fetches)."""
        keys = self._set.keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def key(self, kid: str | None) -> PyJWK | None:
        """Like :meth:`lookup`, and start a background refresh if the set is stale."""
        self._refresh_if_stale()
        return self.lookup(kid)

    def current_generation(self) -> int:
        """:attr:`generation`, after starting a background refresh if the set is stale.

        Called on every verified-token cache hit, so a withdrawn key is noticed even when
        every request carries a token verified earlier.
        """
        self._refresh_if_stale()
        return self.generation

    def _refresh_if_stale(self) -> None:
        fetched_at = self._set.fetched_at
        if fetched_at is None or self._clock() - fetched_at >= self._cache_seconds:
            self.refresh()

    def pending(self, kid: str | None) -> Future[bool] | None:
        """The fetch to wait for before ``kid`` can be looked up, or ``None``.

        ``None`` when the key is known, or when no fetch may start yet (rate limit): the
        lookup then fails at once instead of waiting.
        """
        if self.key(kid) is not None:
            return None
        return self.refresh()

    def key_for(self, kid: str | None, wait: float) -> PyJWK | None:
        """The key for ``kid``, waiting up to ``wait`` seconds for a fetch it needs."""
        future = self.pending(kid)
        if future is not None and wait > 0:
            wait_for_future([future], timeout=wait)
        return self.lookup(kid)

    def refresh(self) -> Future[bool] | None:
        """Start a fetch unless one runs (then return it) or one started too recently.

        The future resolves to whether the fetch succeeded; it never raises.
        """
        if self._pid != os.getpid():  # forked: the parent's lock and fetch are not ours
            self._pid, self._lock, self._inflight = os.getpid(), threading.Lock(), None
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_refresh:
                return None
            self._attempted_at = now
            future: Future[bool] = Future()
            future.set_running_or_notify_cancel()  # a waiter's cancel() cannot cancel it
            self._inflight = future
        threading.Thread(target=self._run, args=(future,), name="jwks-fetch", daemon=True).start()
        return future

    def _run(self, future: Future[bool]) -> None:
        ok = False
        try:
            keys = parse_key_set(self._fetch(), self._algorithms)
            self._install(keys)
            ok = True
        except Exception as exc:  # any failure keeps the last good set
            logger.warning(
                "JWKS fetch failed; keeping %d known keys: %s: %s",
                len(self._set.keys),
                type(exc).__name__,
                exc,
                extra={"jwks_url": self.url},
            )
        finally:
            with self._lock:
                self._inflight = None
                # The window runs from the end of a fetch: a fetch that hung until its
                # timeout is not followed at once by another one.
                self._attempted_at = self._clock()
            future.set_result(ok)

    def _install(self, keys: dict[str | None, PyJWK]) -> None:
        prints = {kid: json.dumps(_jwk_data(jwk), sort_keys=True) for kid, jwk in keys.items()}
        old = self._set.fingerprints
        self._set = _KeySet(keys, prints, self._clock())
        # A key was removed or replaced: forget what it verified. After the swap, so that a
        # verification racing with it is stored under the old generation (redone later).
        if any(prints.get(kid) != text for kid, text in old.items()):
            self.generation += 1
        logger.info(
            "JWKS loaded: %d signing keys", len(keys), extra={"kids": sorted(map(str, keys))}
        )


def _jwk_data(jwk: PyJWK) -> Any:
    """The public parameters of a key, to tell a replaced key from the same one."""
    algorithm = jwk.Algorithm
    return algorithm.to_jwk(jwk.key, as_dict=True)
