"""``python -m services.cache serve``: Sanic with N workers (uvloop), one Redis pool each."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# prometheus_client decides single- or multi-process mode when it is imported, so the
# directory must be in the environment before anything imports it (the app does).
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_METRICS_DEFAULT = "/tmp/strata-cache-metrics"  # noqa: S108 - per-container tmp (emptyDir)


def serve() -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code."""
    from pydantic import ValidationError

    from services.cache.app import create_app
    from services.cache.settings import CacheSettings
    from services.common.sanic_runner import serve as run

    try:
        settings = CacheSettings()
    except ValidationError as exc:
        print(f"invalid STRATA_CACHE_* configuration:\n{exc}", file=sys.stderr)
        return 2
    run(create_app, host=settings.host, port=settings.port, workers=settings.workers)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m services.cache")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP server")
    parser.parse_args(argv)
    os.environ.setdefault(_METRICS_ENV, _METRICS_DEFAULT)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
