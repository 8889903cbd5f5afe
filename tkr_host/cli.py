"""The ``tkr-host`` command: serve, plugins, check-config, and plugin commands
(``token`` from tkr-auth-jwt, ``migrate`` from tkr-store-peewee, …)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from tkr_host.config import ConfigError, Settings, load_settings
from tkr_host.plugins import list_plugins, make_plugin_manager, validate_plugin_tables

CONFIG_ENV = "TKR_CONFIG"


def default_config_path() -> str | None:
    """``$TKR_CONFIG``, else ``config.toml``, else ``config.example.toml`` when present."""
    if os.environ.get(CONFIG_ENV):
        return os.environ[CONFIG_ENV]
    for candidate in ("config.toml", "config.example.toml"):
        if Path(candidate).is_file():
            return candidate
    return None


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Give a sub-command the ``--config FILE`` option every command shares."""
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        metavar="FILE",
        help=f"the TOML config file (default: ${CONFIG_ENV}, else config.toml, else config.example.toml)",
    )


def load_config(args: argparse.Namespace) -> tuple[Settings, dict[str, BaseModel]]:
    """Load and check the config named by ``args.config``, plugin tables included.

    Raises ConfigError with a one-line explanation.
    """
    path = getattr(args, "config", None) or default_config_path()
    settings = load_settings(path)
    pm = make_plugin_manager(settings)
    return settings, validate_plugin_tables(pm, settings)


def _serve(args: argparse.Namespace) -> int:
    from tkr_host.serve import serve

    path = args.config or default_config_path()
    load_config(args)  # fail fast, with a clear line, before Hypercorn starts
    return serve(path)


def _plugins(args: argparse.Namespace) -> int:
    settings = load_settings(args.config or default_config_path())
    infos = list_plugins(make_plugin_manager(settings))
    if args.json:
        print(json.dumps([info.to_wire() for info in infos], indent=2))
        return 0
    for info in infos:
        where = f"{info.distribution} {info.version}" if info.distribution else "(not installed as a distribution)"
        print(f"{info.name}  [{where}]\n    hooks: {', '.join(info.hooks) or '-'}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    args.config = args.file or args.config
    settings, plugin_settings = load_config(args)
    print(f"{settings.where()}: OK ({len(plugin_settings)} plugin tables checked: {', '.join(sorted(plugin_settings)) or 'none'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tkr-host", description="The real-time layer for agent chat.")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = subcommands.add_parser("serve", help="run the host with Hypercorn")
    add_config_argument(serve)
    serve.set_defaults(func=_serve)

    plugins = subcommands.add_parser("plugins", help="list the loaded plugins and their hooks")
    add_config_argument(plugins)
    plugins.add_argument("--json", action="store_true", help="print JSON, as GET /api/v1/plugins")
    plugins.set_defaults(func=_plugins)

    check = subcommands.add_parser("check-config", help="check a config file as start-up would")
    check.add_argument("file", nargs="?", help="the file to check")
    add_config_argument(check)
    check.set_defaults(func=_check_config)

    # Plugins add their own commands. The plugin manager is built from the
    # environment's settings, because which file to read is itself an argument.
    try:
        pm = make_plugin_manager(load_settings(None))
        pm.hook.register_commands(subcommands=subcommands)
    except ConfigError:
        # A broken environment variable: the command itself reports it, once,
        # when it loads the configuration.
        pass
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except ConfigError as exc:
        print(f"tkr-host: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
