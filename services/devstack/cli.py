"""``strata``: the developer CLI (mint tokens, run the local stack)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.common.auth import audience_for, mint_token
from services.common.settings import DEV_JWT_SECRET

#: Every scope each service knows, for the "give me a token that can do anything" case.
ALL_SCOPES = {
    "critical": "accounts:read accounts:write transfers:write ledger:admin",
    "ml": "docs:read docs:write collections:admin",
    "cache": "cache:read cache:write",
}


def _token(args: argparse.Namespace) -> int:
    if args.private_key:
        # RS256/ES256 with a locally generated key pair (docs/auth.md's worked example).
        key = Path(args.private_key).read_text(encoding="utf-8")
        private = serialization.load_pem_private_key(key.encode(), password=None)
        algorithm = args.algorithm or (
            "ES256" if isinstance(private, ec.EllipticCurvePrivateKey) else "RS256"
        )
    else:
        key = os.environ.get("STRATA_JWT_SECRET") or DEV_JWT_SECRET
        algorithm = args.algorithm or "HS256"
    scopes = (args.scope or ALL_SCOPES[args.service]).split()
    print(
        mint_token(
            key=key,
            algorithm=algorithm,
            audience=audience_for(args.service),
            scopes=scopes,
            subject=args.subject,
            ttl=args.ttl,
            issuer=args.issuer,
            key_id=args.kid,
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
        help="mint a development token (HS256 with $STRATA_JWT_SECRET or the dev secret, "
        "or RS256/ES256 with --private-key)",
    )
    token.add_argument("--service", choices=sorted(ALL_SCOPES), required=True)
    token.add_argument("--scope", help="space-separated scopes (default: all of the service)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--subject", default="developer", help="the token's sub claim")
    token.add_argument("--issuer", help="the token's iss claim (when the service checks one)")
    token.add_argument("--private-key", help="PEM private key file: sign RS256/ES256 with it")
    token.add_argument(
        "--algorithm",
        choices=["HS256", "RS256", "ES256"],
        help="default: HS256, or RS256/ES256 from the --private-key type",
    )
    token.add_argument("--kid", help="key id for the token header (JWKS key selection)")
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
