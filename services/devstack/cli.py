"""``strata``: the developer CLI (mint tokens, run the local stack)."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.auth import audience_for, mint_token
from services.common.settings import DEV_JWT_SECRET

#: Every scope each service knows, for the "give me a token that can do anything" case.
ALL_SCOPES = {
    "critical": "accounts:read accounts:write transfers:write ledger:admin",
    "ml": "docs:read docs:write collections:admin",
    "cache": "cache:read cache:write",
}


def _token(args: argparse.Namespace) -> int:
    secret = os.environ.get("STRATA_JWT_SECRET") or DEV_JWT_SECRET
    scopes = (args.scope or ALL_SCOPES[args.service]).split()
    print(
        mint_token(
            key=secret,
            audience=audience_for(args.service),
            scopes=scopes,
            subject=args.subject,
            ttl=args.ttl,
        )
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from services.devstack.stack import run_stack

    return run_stack(services=args.services, base_port=args.port)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="strata", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    token = sub.add_parser(
        "token",
        help="mint a development token (HS256 with $STRATA_JWT_SECRET or the dev secret)",
    )
    token.add_argument("--service", choices=sorted(ALL_SCOPES), required=True)
    token.add_argument("--scope", help="space-separated scopes (default: all of the service)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--subject", default="developer", help="the token's sub claim")
    token.set_defaults(func=_token)

    run = sub.add_parser("run", help="run PostgreSQL, Redis and every service locally")
    run.add_argument("--services", nargs="+", choices=list(ALL_SCOPES), default=list(ALL_SCOPES))
    run.add_argument("--port", type=int, default=8001, help="first service port to try")
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``strata`` console script."""
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
