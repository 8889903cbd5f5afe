"""``tkr-host apikey new``: make a key and print the config line that accepts it.

stdout gets exactly two lines: the key, then the inline table to add to the
``keys`` array of ``[plugins.auth_apikey]``. The warning that the key is shown
once, and where the line goes, go to stderr, so that a script can capture
stdout while the person at the terminal still reads them. No config file is read
or written: the key is never stored anywhere by this command.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from tkr_auth_apikey.keys import digest, new_key
from tkr_auth_apikey.render import inline_table
from tkr_auth_apikey.settings import KINDS, KINDS_TEXT, PLUGIN_NAME, ApiKeyEntry

USAGE_ERROR = 2
_OPTIONS = {"sub": "--sub", "kind": "--kind", "name": "--name", "roles": "--role"}


def add_apikey_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "apikey",
        help="make API keys for agents and services",
        description=f"Manage the API keys of [plugins.{PLUGIN_NAME}].",
    )
    actions = parser.add_subparsers(dest="apikey_action", metavar="{new}", required=True)
    new = actions.add_parser(
        "new",
        help="print a new API key and the config line that accepts it",
        description=(
            f"Print a new API key, then the line to add to the keys array of [plugins.{PLUGIN_NAME}]. "
            "The key is shown once: only its SHA-256 digest goes into the config."
        ),
    )
    new.add_argument("--sub", required=True, help="the principal id the key stands for")
    # Checked by hand rather than with `choices`, so that a bad value gets one clear line.
    new.add_argument("--kind", default="agent", metavar="{" + ",".join(KINDS) + "}", help="the principal kind (default: agent)")
    new.add_argument("--name", default="", help="the display name")
    new.add_argument("--role", dest="roles", action="append", default=[], metavar="ROLE", help="a role; repeat for several")
    new.set_defaults(func=run_new_command)


def run_new_command(args: argparse.Namespace) -> int:
    if args.kind not in KINDS:
        return _refuse(f"--kind must be {KINDS_TEXT}, not {args.kind!r}")
    key = new_key()
    try:
        entry = ApiKeyEntry(sha256=digest(key), sub=args.sub, kind=args.kind, name=args.name, roles=tuple(args.roles))
    except ValidationError as exc:
        problem = exc.errors()[0]
        option = _OPTIONS.get(str(problem["loc"][0]), str(problem["loc"][0])) if problem["loc"] else "input"
        return _refuse(f"{option}: {problem['msg']}")
    line = inline_table(entry)
    print(key)
    print(line, flush=True)
    print(
        "\n".join(
            [
                "This key is shown once and stored nowhere: hand it to the agent or service now (in its secret store or environment).",
                f"Only its SHA-256 digest goes into the config. Add the second line to the keys array of [plugins.{PLUGIN_NAME}]:",
                f"    [plugins.{PLUGIN_NAME}]",
                "    keys = [",
                f"      {line},",
                "    ]",
                "then restart the host.",
            ]
        ),
        file=sys.stderr,
    )
    return 0


def _refuse(message: str) -> int:
    print(f"tkr-host apikey new: {message}", file=sys.stderr)
    return USAGE_ERROR
