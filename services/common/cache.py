"""A small bounded cache of verified tokens, honouring each token's expiry."""

from __future__ import annotations

import time
from collections import OrderedDict

from services.common.auth import Principal, TokenVerifier


class CachingVerifier:
    """Wrap a :class:`TokenVerifier` and remember good tokens until they expire.

    Only successful verifications are cached (failures are cheap to repeat and must
    never be sticky), and an entry is dropped the moment its token expires.
    """

    def __init__(self, verifier: TokenVerifier, max_entries: int = 4096) -> None:
        self._verifier = verifier
        self._entries: OrderedDict[str, Principal] = OrderedDict()
        self._max = max_entries

    def verify_header(self, authorization: str | None) -> Principal:
        """Like :meth:`TokenVerifier.verify_header`, served from the cache when fresh."""
        if authorization:
            hit = self._entries.get(authorization)
            if hit is not None:
                if hit.expires_at > time.time():
                    return hit
                del self._entries[authorization]
        principal = self._verifier.verify_header(authorization)
        assert authorization is not None  # verify_header raised otherwise
        self._entries[authorization] = principal
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return principal
