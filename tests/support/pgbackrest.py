"""pgBackRest for a test PostgreSQL: a repository in a temporary directory, WAL archiving,
backups and restores into new data directories (Debian's `pgbackrest` package).

Everything runs as the user that owns the server's data directory (PostgreSQL refuses root,
so the test harness runs it as an unprivileged user when the tests run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from services.devstack.postgres import SUPERUSER, PostgresServer

#: Why a test needing pgBackRest cannot run; None when it can. CI (.ci/run installs the
#: package and sets STRATA_REQUIRE_PGBACKREST=1) fails instead of skipping.
MISSING = (
    None
    if shutil.which("pgbackrest")
    else "pgbackrest is not installed (Debian package `pgbackrest`: apt-get install -y pgbackrest)"
)
if MISSING and os.environ.get("STRATA_REQUIRE_PGBACKREST") == "1":
    raise RuntimeError(MISSING)


class PgBackRest:
    """One stanza of ``pg`` in a repository in a new temporary directory (under the system's
    temporary directory: the server's user must reach it; pytest's tmp_path is root's only).
    """

    def __init__(self, pg: PostgresServer, stanza: str = "strata") -> None:
        self.pg = pg
        self.stanza = stanza
        self.base = Path(tempfile.mkdtemp(prefix="strata-pgbackrest-"))
        owner = pwd.getpwuid(pg.data.stat().st_uid)
        self.user = owner.pw_name if os.geteuid() == 0 else None
        self.base.mkdir(parents=True, exist_ok=True)
        for sub in ("repo", "log", "lock", "spool"):
            (self.base / sub).mkdir(exist_ok=True)
        self.config = self.base / "pgbackrest.conf"
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.base / 'repo'}\n"
            f"log-path={self.base / 'log'}\n"
            f"lock-path={self.base / 'lock'}\n"
            f"spool-path={self.base / 'spool'}\n"
            "log-level-file=off\n"
            "log-level-console=warn\n"
            "compress-type=lz4\n"
            "archive-async=y\n"
            "process-max=2\n"
            "start-fast=y\n"
            "repo1-retention-full=2\n"
            f"[{stanza}]\n"
            f"pg1-path={pg.data}\n"
            f"pg1-port={pg.port}\n"
            f"pg1-socket-path={pg.base}\n"
            f"pg1-user={SUPERUSER}\n"
        )
        if self.user:
            self.chown(self.base)

    def remove(self) -> None:
        """Delete the repository and everything else under the temporary directory."""
        shutil.rmtree(self.base, ignore_errors=True)

    def chown(self, path: Path) -> None:
        """Give ``path`` (recursively) to the server's user."""
        if not self.user:
            return
        info = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.chown(name, info.pw_uid, info.pw_gid)

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``pgbackrest --stanza=... ARGS`` as the server's user; raises with its output."""
        cmd = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def archive_command(self) -> str:
        """What PostgreSQL runs for every WAL segment (the chart's, with this config)."""
        return f'pgbackrest --config={self.config} --stanza={self.stanza} archive-push "%p"'

    def enable_archiving(self) -> None:
        """archive_mode on (needs a restart) with pgBackRest's archive_command; the stanza."""
        self.pg.psql("ALTER SYSTEM SET archive_mode = 'on'")
        command = self.archive_command().replace("'", "''")
        self.pg.psql(f"ALTER SYSTEM SET archive_command = '{command}'")
        self.pg.stop(remove=False)
        self.pg.restart_stopped()
        self.run("stanza-create")

    def restore(self, target: PostgresServer, target_time: str | None = None) -> float:
        """Restore into ``target``'s (empty) data directory and start it; returns the seconds
        until it accepts writes (recovery done, promoted). Archiving stays off in the copy."""
        started = time.monotonic()
        target.base.mkdir(parents=True, exist_ok=True)
        target.data.mkdir(mode=0o700)
        self.chown(target.base)
        args = [f"--pg1-path={target.data}", "--archive-mode=off"]
        if target_time:
            args += ["--type=time", f"--target={target_time}", "--target-action=promote"]
        self.run(*args, "restore")
        target.restart_stopped()
        deadline = time.monotonic() + 120
        while target.psql("SELECT pg_is_in_recovery()").strip() != "f":
            if time.monotonic() > deadline:
                raise TimeoutError("the restored server did not finish recovery in 120 s")
            time.sleep(0.2)
        return time.monotonic() - started
