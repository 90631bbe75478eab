"""A small bounded cache of verified tokens, honouring each token's expiry and key rotation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict

from services.common.auth import Principal, TokenVerifier


class CachingVerifier:
    """Wrap a :class:`TokenVerifier` and remember good tokens until they expire.

    Only successful verifications are cached (failures are cheap to repeat and must
    never be sticky). An entry is dropped the moment its token expires, and every entry
    is re-verified once after a signing key is withdrawn from the identity provider's
    key set (the verifier's ``key_generation`` changes): a token signed with a removed
    key stops working at the next request, not at its ``exp``.
    """

    def __init__(self, verifier: TokenVerifier, max_entries: int = 4096) -> None:
        self._verifier = verifier
        self._entries: OrderedDict[str, tuple[Principal, int]] = OrderedDict()
        self._max = max_entries

    def _fresh(self, authorization: str) -> Principal | None:
        hit = self._entries.get(authorization)
        if hit is None:
            return None
        principal, generation = hit
        if principal.expires_at > time.time() and generation == self._verifier.key_generation():
            return principal
        # pop, not del: in a threaded worker another thread may have dropped it already.
        self._entries.pop(authorization, None)
        return None

    def verify_header(self, authorization: str | None) -> Principal:
        """Like :meth:`TokenVerifier.verify_header`, served from the cache when fresh."""
        if authorization:
            hit = self._fresh(authorization)
            if hit is not None:
                return hit
        # Read before verifying: a key withdrawn meanwhile leaves this entry stale, not valid.
        generation = self._verifier.key_generation()
        principal = self._verifier.verify_header(authorization)
        assert authorization is not None  # verify_header raised otherwise
        self._entries[authorization] = (principal, generation)
        if len(self._entries) > self._max:
            with contextlib.suppress(KeyError):  # emptied meanwhile by another thread
                self._entries.popitem(last=False)
        return principal

    async def prepare(self, authorization: str) -> None:
        """Await (never block on) a JWKS fetch the token needs, so :meth:`verify_header`
        finds its key; returns at once for cached tokens and configured keys."""
        if authorization in self._entries:
            return
        future = self._verifier.pending(authorization)
        if future is None:
            return
        # On timeout the lookup fails with 401; the fetch goes on in the background.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self._verifier.key_timeout
            )
