"""``python -m services.critical serve|migrate``: the container's entry points."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def serve() -> None:
    """Replace this process with gunicorn (so SIGTERM reaches it directly)."""
    # Must be set before any worker imports prometheus_client.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/strata-critical-metrics")  # noqa: S108
    conf = Path(__file__).with_name("gunicorn_conf.py")
    os.execv(  # noqa: S606 - exec, not spawn: gunicorn becomes this PID
        sys.executable,
        [sys.executable, "-m", "gunicorn", "-c", str(conf), "services.critical.app:create_app()"],
    )


def run_migrations() -> None:
    """Apply migrations as the owner role and grant the runtime role."""
    from services.common.logs import configure_logging
    from services.critical.migrate import migrate
    from services.critical.settings import MigrationSettings

    settings = MigrationSettings()
    configure_logging("critical-migrate", settings.log_level)
    migrate(settings)


def main(argv: list[str] | None = None) -> None:
    """Dispatch the subcommand."""
    parser = argparse.ArgumentParser(prog="python -m services.critical")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
    else:
        run_migrations()


if __name__ == "__main__":
    main()
