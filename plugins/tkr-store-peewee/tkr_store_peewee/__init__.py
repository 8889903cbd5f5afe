"""tkr-store-peewee: the host's message store on SQLite (WAL) or PostgreSQL.

Hook implementations only; the store itself is :class:`tkr_store_peewee.store.PeeweeStore`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from tkr_host import HostError, hookimpl
from tkr_store_peewee.settings import StoreSettings
from tkr_store_peewee.store import PeeweeStore

if TYPE_CHECKING:
    from tkr_host import HostAPI as Host

#: The plugin's entry-point name, which is also its config table.
NAME = "store_peewee"

__all__ = ["NAME", "PeeweeStore", "StoreSettings"]


@hookimpl
def config_model() -> type[StoreSettings]:
    return StoreSettings


@hookimpl
def message_store(host: Host) -> PeeweeStore:
    return PeeweeStore(host.config(NAME, StoreSettings))


@hookimpl
def register_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tkr_host import add_config_argument

    parser = subcommands.add_parser("migrate", help="apply the store's pending schema migrations")
    add_config_argument(parser)
    parser.set_defaults(func=_migrate_command)


def _migrate_command(args: argparse.Namespace) -> int:
    from tkr_host import load_config

    _, plugin_settings = load_config(args)
    settings = plugin_settings.get(NAME)
    if not isinstance(settings, StoreSettings):
        print(f"tkr-host migrate: the {NAME} plugin is disabled", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(_migrate(settings))
    except HostError as exc:
        print(f"tkr-host migrate: {exc} (see the log, request {exc.request_id})", file=sys.stderr)
        return 1
    for name in applied:
        print(f"applied: {name}")
    if not applied:
        print("nothing to apply: the schema is up to date")
    return 0


async def _migrate(settings: StoreSettings) -> list[str]:
    store = PeeweeStore(settings)
    try:
        return await store.migrate()
    finally:
        await store.close()
