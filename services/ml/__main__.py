"""``python -m services.ml serve|migrate`` (the image's and the chart's entry points)."""

from __future__ import annotations

import os
import sys

# Must be in the environment before prometheus_client is first imported (below, via the
# app), in this process and in every worker it spawns.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/strata-ml-metrics")  # noqa: S108

USAGE = "usage: python -m services.ml serve|migrate"


def serve() -> None:
    """Sanic with N workers (uvloop), each building the app from the factory."""
    from services.common.sanic_runner import serve as run
    from services.ml.app import create_app
    from services.ml.settings import MlSettings

    settings = MlSettings()  # fail fast, in the main process, on bad configuration
    run(create_app, host=settings.host, port=settings.port, workers=settings.workers)


def migrate() -> None:
    """As the owner role: tables, indexes and the runtime role (advisory-locked, idempotent)."""
    import asyncio

    from services.ml.settings import MlDatabaseSettings
    from services.ml.store.roles import RoleError
    from services.ml.store.schema import migrate as run

    settings = MlDatabaseSettings()
    try:
        tables = asyncio.run(run(settings))
    except RoleError as exc:
        sys.exit(f"ml migrate refused: {exc}")
    print(f"ml schema ready: {', '.join(tables)}; runtime role {settings.database_user} granted")


def main(argv: list[str]) -> int:
    """Dispatch the sub-command."""
    commands = {"serve": serve, "migrate": migrate}
    if len(argv) != 1 or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
