"""A throwaway PostgreSQL server in a temporary directory, on a free loopback port.

System binaries are preferred (Debian's ``/usr/lib/postgresql/*/bin``); otherwise the
binaries bundled by the ``pgserver`` wheel. PostgreSQL refuses to run as root, so as
root the server runs as the ``postgres`` user (or ``nobody``) via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.devstack.ports import free_port, wait_for_port
from services.devstack.tls import ServerTls

SUPERUSER = "strata_admin"


def find_bin_dir() -> Path:
    """Where initdb/pg_ctl live: the system's newest, else pgserver's bundle."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    which = shutil.which("initdb")
    if which:
        return Path(which).resolve().parent
    try:
        import pgserver._commands as bundled
    except ImportError as exc:  # pragma: no cover - dev extra always has it
        raise RuntimeError(
            "no PostgreSQL binaries: install the 'postgresql' package or pip install pgserver"
        ) from exc
    return Path(bundled.POSTGRES_BIN_PATH)


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


class PostgresServer:
    """Start with :meth:`start`, stop with :meth:`stop` (also removes the data).

    ``tls``: the server also serves TLS (``ssl=on``) with that certificate and key; plain
    connections are still accepted (``host`` lines in pg_hba), as on managed servers
    before they are made TLS-only: whether TLS is used is the client's ``sslmode``.
    """

    def __init__(
        self, port: int | None = None, base_dir: str | None = None, tls: ServerTls | None = None
    ) -> None:
        self.port = port or free_port()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="strata-pg-"))
        self.data = self.base / "data"
        self.password = "strata-dev-admin"  # noqa: S105 - throwaway local server
        self.bin = find_bin_dir()
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self.tls = tls

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the superuser on the ``postgres`` database."""
        return self.url(SUPERUSER, self.password, "postgres")

    def url(self, user: str, password: str, database: str, driver: str = "psycopg2") -> str:
        """A SQLAlchemy URL for this server."""
        return f"postgresql+{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self._run_as, "--"] if self._run_as else []
        return [*prefix, *args]

    def start(self) -> PostgresServer:
        """initdb (scram auth over TCP), then start and wait until it accepts connections."""
        self.base.mkdir(parents=True, exist_ok=True)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password)
        if self._run_as:
            info = pwd.getpwnam(self._run_as)
            os.chown(self.base, info.pw_uid, info.pw_gid)
            os.chown(pwfile, info.pw_uid, info.pw_gid)
        self.base.chmod(0o700)
        if self.tls:
            self._install_tls(self.tls)
        subprocess.run(
            self._cmd(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=self.base,
        )
        self._start_server()
        return self

    def stop(self, remove: bool = True, mode: str = "fast") -> None:
        """Stop the server (``fast`` rolls back open transactions) and delete its data."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
                check=False,
                capture_output=True,
                cwd=self.base,
            )
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)

    def restart_stopped(self) -> None:
        """Start a server stopped by ``stop(remove=False)`` again on the same port."""
        self._start_server()

    def _install_tls(self, tls: ServerTls) -> None:
        """Copy the key pair into the server's directory: PostgreSQL wants the key owned by
        the user it runs as, readable by nobody else."""
        for name, source in (("server.crt", tls.cert_file), ("server.key", tls.key_file)):
            target = self.base / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if self._run_as:
                info = pwd.getpwnam(self._run_as)
                os.chown(target, info.pw_uid, info.pw_gid)

    def _start_server(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.base} -c fsync=off "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        if self.tls:
            options += (
                f" -c ssl=on -c ssl_cert_file={self.base / 'server.crt'}"
                f" -c ssl_key_file={self.base / 'server.key'}"
            )
        pg_ctl = str(self.bin / "pg_ctl")
        log = str(self.base / "log")
        subprocess.run(
            self._cmd(
                pg_ctl, "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"
            ),
            check=True,
            capture_output=True,
            cwd=self.base,
        )
        wait_for_port(self.port)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through psql over the socket; returns stdout."""
        result = subprocess.run(
            self._cmd(
                str(self.bin / "psql"),
                "-h",
                str(self.base),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atq",
                "-c",
                sql,
            ),
            check=True,
            capture_output=True,
            text=True,
            cwd=self.base,
        )
        return result.stdout


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")
