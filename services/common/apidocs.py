"""``/docs``: the interactive API reference, Swagger UI served from the image itself.

Swagger UI's files come from the ``swagger-ui-py`` wheel (pinned in pyproject.toml): no
CDN, so the page works on an air-gapped cluster. Every service serves its reference
under ``/docs/<service>/`` with relative links only (the bundle, the stylesheet and
``openapi.json`` beside the page), so the same page works on the service's own port
and through the Ingress, which routes ``/docs/<service>`` to it. ``/docs`` itself
redirects there. The framework glue routes these; this module only answers.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

#: The files of Swagger UI that the page loads, and their media types.
_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
#: Swagger UI sets inline styles; scripts come from this origin only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_ASSET_CACHE = "public, max-age=86400"
_INIT = (
    b'window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui",'
    b" deepLinking: true, tryItOutEnabled: false});\n"
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the page: its bytes, gzipped bytes and media type."""

    body: bytes
    gzipped: bytes
    content_type: str

    def headers(self, gzip_ok: bool) -> dict[str, str]:
        """Response headers for the identity or the gzip form."""
        headers = {"Cache-Control": _ASSET_CACHE, "Vary": "Accept-Encoding", **_NOSNIFF}
        if gzip_ok:
            headers["Content-Encoding"] = "gzip"
        return headers


_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def prefix(service: str) -> str:
    """Where a service's reference lives: ``/docs/<service>/``."""
    return f"/docs/{service}/"


def page(service: str, title: str) -> bytes:
    """The HTML page that loads Swagger UI with this service's ``openapi.json``."""
    name = escape(f"{title} API reference")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{name}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" type="image/png" href="favicon-32x32.png">\n'
        '<link rel="stylesheet" href="swagger-ui.css">\n</head>\n<body>\n'
        f'<div id="swagger-ui" data-service="{escape(service)}"></div>\n'
        '<script src="swagger-ui-bundle.js"></script>\n'
        '<script src="init.js"></script>\n</body>\n</html>\n'
    ).encode()


def asset(name: str) -> Asset:
    """A file the page loads: ``init.js`` or one of Swagger UI's (KeyError for others)."""
    if name != "init.js" and name not in _FILES:
        raise KeyError(name)
    return _asset(name)


def asset_names() -> tuple[str, ...]:
    """Every file :func:`asset` serves, for the routes and the tests."""
    return ("init.js", *_FILES)


@cache
def _asset(name: str) -> Asset:
    # Read and gzipped once per worker, on first ask: most workers never serve the page.
    if name == "init.js":
        body, content_type = _INIT, "text/javascript; charset=utf-8"
    else:
        body, content_type = (_static_dir() / name).read_bytes(), _FILES[name]
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), content_type)


def _static_dir() -> Path:
    # find_spec locates the wheel without importing it: its __init__ pulls in its own
    # framework handlers, which the services never use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"
