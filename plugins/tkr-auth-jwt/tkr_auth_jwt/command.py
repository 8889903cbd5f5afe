"""``tkr-host token``: print a signed token, for development and scripts.

Only the token goes to stdout, so ``TOKEN=$(tkr-host token --sub alice)``
works. Every refusal is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from tkr_auth_jwt.mint import MintError, mint_token, parse_ttl
from tkr_auth_jwt.settings import PLUGIN_NAME, JwtSettings
from tkr_auth_jwt.verify import KINDS, KINDS_TEXT
from tkr_host import add_config_argument, load_config

USAGE_ERROR = 2


def add_token_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "token",
        help="print a signed token (HS* configs only)",
        description="Mint a token with the HS* secret of [plugins.auth_jwt] and print it on stdout.",
    )
    parser.add_argument("--sub", required=True, help="the principal id (the `sub` claim)")
    # Checked by hand rather than with `choices`, so that a bad value gets one clear line.
    parser.add_argument("--kind", default="user", metavar="{" + ",".join(KINDS) + "}", help="the principal kind (default: user)")
    parser.add_argument("--ttl", default=None, help="lifetime such as 90s, 30m, 1h or 2d (default: default_ttl_s of the config)")
    parser.add_argument("--name", default=None, help="the display name (the `name` claim)")
    parser.add_argument("--role", dest="roles", action="append", default=[], metavar="ROLE", help="a role; repeat for several")
    add_config_argument(parser)
    parser.set_defaults(func=run_token_command)


def run_token_command(args: argparse.Namespace) -> int:
    try:
        # Check the arguments first: a typo should not wait for the config to load.
        ttl_s = parse_ttl(args.ttl) if args.ttl is not None else None
        if args.kind not in KINDS:
            raise MintError(f"--kind must be {KINDS_TEXT}, not {args.kind!r}")
        # A ConfigError here is reported by tkr-host's main: a line per problem, status 2.
        settings = load_config(args)[1].get(PLUGIN_NAME)
        if not isinstance(settings, JwtSettings):
            raise MintError(f"the {PLUGIN_NAME} plugin is disabled in this config")
        token = mint_token(settings, args.sub, kind=args.kind, ttl_s=ttl_s, name=args.name, roles=args.roles)
    except MintError as exc:
        print(f"tkr-host token: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(token)
    return 0
