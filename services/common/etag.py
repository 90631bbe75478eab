"""The version an ``If-Match`` header names, read the same way by every service."""

from __future__ import annotations


def if_match_version(raw: str, max_digits: int) -> int | None:
    """The version in ``3``, ``"3"`` or ``W/"3"`` (ASCII digits, at most ``max_digits``).

    None when the header names no such version; the caller says why in its 422.
    """
    value = raw.strip().removeprefix("W/").strip('"')
    if 1 <= len(value) <= max_digits and value.isascii() and value.isdigit():
        return int(value)
    return None


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` names ``etag`` (RFC 9110 section 13.1.2).

    The weak comparison the RFC asks for: ``W/"3"`` and ``"3"`` match each other, ``*``
    matches any current representation. A header that names nothing matches nothing.
    """
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in header.split(","))


def _opaque(tag: str) -> str:
    """The opaque part of an entity tag: ``W/"3"`` and ``"3"`` both give ``3``."""
    return tag.strip().removeprefix("W/").strip('"')


def not_modified(method: str, status: int, if_none_match: str | None, etag: str | None) -> bool:
    """Whether a successful GET (or HEAD) answer becomes ``304 Not Modified``."""
    if method not in ("GET", "HEAD") or status != 200 or not etag:
        return False
    return none_match(if_none_match, etag)
