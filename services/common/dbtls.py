"""TLS to PostgreSQL, as both PostgreSQL tiers configure it: libpq's ``sslmode`` semantics.

The settings (:class:`DatabaseTlsSettings`, mixed into critical's and ml's settings) are
``DATABASE_SSLMODE`` (``disable``, ``allow``, ``prefer``, ``require``, ``verify-ca``,
``verify-full``), ``DATABASE_SSLROOTCERT`` (a CA bundle file), and optionally a client
certificate and key (``DATABASE_SSLCERT``, ``DATABASE_SSLKEY``). critical hands them to
libpq (:meth:`DatabaseTlsSettings.libpq_parameters`); ml turns them into what asyncpg's
``ssl=`` takes (:meth:`DatabaseTlsSettings.asyncpg_ssl`). Both mean the same thing:

- ``verify-ca``/``verify-full`` without a CA bundle trust the system's store (the OS
  bundle file, e.g. Debian's ``/etc/ssl/certs/ca-certificates.crt``; start-up is refused
  when there is none): managed servers whose CA is public (Azure) need no file, those with
  a private CA (RDS, Cloud SQL) name theirs. With a bundle only that bundle is trusted.
- ``require`` with a CA bundle verifies the chain (as libpq does when a root certificate
  is present); without one it encrypts without verifying.
- A CA bundle with ``disable``/``allow``/``prefer`` is refused: those modes never verify,
  and a bundle that is silently ignored would look like protection.

A handshake that fails (wrong CA, wrong name, no TLS on a ``require`` server) is an
unreachable store: the services answer 503 and report it in ``/readyz``; nothing falls
back to plain text in ``require`` and above.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
#: Modes that never verify the server: a CA bundle is refused with them.
UNVERIFIED_MODES = frozenset({"disable", "allow", "prefer"})
VERIFYING_MODES = frozenset({"verify-ca", "verify-full"})


def system_ca_bundle() -> str | None:
    """The operating system's CA bundle file (OpenSSL's default, or ``SSL_CERT_FILE``)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get(paths.openssl_cafile_env), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def check_readable(name: str, path: str | None) -> None:
    """Refuse a configured file that is not there or cannot be read (a mount gone wrong)."""
    if path is None:
        return
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise ValueError(f"{name}: cannot read {path!r} ({exc.strerror or exc})") from None


class DatabaseTlsSettings(BaseSettings):
    """``<PREFIX>DATABASE_SSLMODE``/``_SSLROOTCERT``/``_SSLCERT``/``_SSLKEY`` (prefix from the
    subclass)."""

    database_sslmode: SslMode = "prefer"
    database_sslrootcert: str | None = None
    database_sslcert: str | None = None
    database_sslkey: str | None = None

    @model_validator(mode="after")
    def _check_database_tls(self) -> Self:
        mode = self.database_sslmode
        if self.database_sslrootcert and mode in UNVERIFIED_MODES:
            raise ValueError(
                f"database_sslrootcert is set but database_sslmode={mode} never verifies the "
                "server: use require, verify-ca or verify-full (or drop the CA bundle)"
            )
        if bool(self.database_sslcert) != bool(self.database_sslkey):
            raise ValueError("database_sslcert and database_sslkey go together (set both or none)")
        if self.database_sslcert and mode in UNVERIFIED_MODES:
            raise ValueError(
                f"a client certificate needs database_sslmode require or above (not {mode})"
            )
        check_readable("database_sslrootcert", self.database_sslrootcert)
        check_readable("database_sslcert", self.database_sslcert)
        check_readable("database_sslkey", self.database_sslkey)
        if mode in VERIFYING_MODES and not self.database_root_cert:
            raise ValueError(
                f"database_sslmode={mode} needs a CA bundle: set database_sslrootcert "
                "(no system CA bundle was found to fall back on)"
            )
        return self

    @property
    def database_root_cert(self) -> str | None:
        """The CA bundle the server is verified against (the system's for verify-* without
        one), or None when the mode does not verify."""
        if self.database_sslrootcert:
            return self.database_sslrootcert
        if self.database_sslmode in VERIFYING_MODES:
            return system_ca_bundle()
        return None

    def libpq_parameters(self) -> dict[str, str]:
        """libpq connection parameters (critical's URL query)."""
        params: dict[str, str] = {"sslmode": self.database_sslmode}
        root = self.database_root_cert
        if root:
            params["sslrootcert"] = root
            if self.database_sslmode == "require":
                # libpq verifies the chain in require mode when a root file is given, as
                # asyncpg_ssl() does: one meaning for both tiers.
                params["sslmode"] = "verify-ca"
        if self.database_sslcert and self.database_sslkey:
            params["sslcert"] = self.database_sslcert
            params["sslkey"] = self.database_sslkey
        return params

    def asyncpg_ssl(self) -> ssl.SSLContext | str:
        """asyncpg's ``ssl=``: the mode's name for the modes that never verify (asyncpg
        then falls back to plain text as libpq does), else a context that verifies as
        the mode says and never falls back."""
        mode = self.database_sslmode
        if mode in UNVERIFIED_MODES:
            return mode
        root = self.database_root_cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if root:
            context.load_verify_locations(cafile=root)
            context.verify_mode = ssl.CERT_REQUIRED
            context.check_hostname = mode == "verify-full"
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.database_sslcert and self.database_sslkey:
            context.load_cert_chain(self.database_sslcert, self.database_sslkey)
        return context
