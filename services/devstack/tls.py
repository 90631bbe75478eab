"""A key pair for a local server that serves TLS (the local runner and integration tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerTls:
    """PEM files: the server's certificate (chain) and key, and the CA that issued it."""

    cert_file: str
    key_file: str
    ca_file: str
