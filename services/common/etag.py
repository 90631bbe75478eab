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
