"""``tkr-host bans list`` and ``tkr-host bans lift <ip|principal>``.

With the ``redis`` backend the command reads and changes the bans in Redis
itself, so it works whether or not a host runs. With the ``memory`` backend the
bans live inside the running host, so the command calls its admin API
(``--url``, default ``[host] public_url``) with an admin token (``--token`` or
``$TKR_ADMIN_TOKEN``). ``--url`` always selects the admin API.

Exit status: 0 done, 1 no such ban, 2 a usage, config or connection problem
(one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import redis

from tkr_guard.backends import Ban, RedisBackend
from tkr_guard.scoring import Target
from tkr_guard.settings import PLUGIN_NAME, GuardSettings
from tkr_host import add_config_argument, load_config

TOKEN_ENV = "TKR_ADMIN_TOKEN"
NOT_FOUND, USAGE_ERROR = 1, 2
T = TypeVar("T")


class CommandError(Exception):
    """A problem the person can fix; the message is one line."""


class Admin(Protocol):
    def list(self) -> list[Ban]: ...

    def lift(self, target: Target) -> Ban | None: ...


class RedisAdmin:
    """Bans straight from Redis, as the hosts sharing it see them."""

    def __init__(self, settings: GuardSettings) -> None:
        assert settings.redis_url is not None
        self.settings = settings

    def _run(self, operation: Callable[[RedisBackend], Awaitable[T]]) -> T:
        async def run() -> T:
            s = self.settings
            assert s.redis_url is not None
            backend = RedisBackend(s.redis_url, s.key_prefix, s.window_s, s.redis_timeout_s)
            try:
                return await operation(backend)
            finally:
                await backend.close()

        try:
            return asyncio.run(run())
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise CommandError(f"cannot reach Redis at {self.settings.redis_url}: {exc}") from None
        except redis.RedisError as exc:
            raise CommandError(f"Redis at {self.settings.redis_url} failed: {exc}") from None

    def list(self) -> list[Ban]:
        return self._run(lambda backend: backend.bans())

    def lift(self, target: Target) -> Ban | None:
        return self._run(lambda backend: backend.lift(target))


class HttpAdmin:
    """Bans through a running host's admin API."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            try:
                error = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                raise CommandError(f"{method} {self.url}{path} answered HTTP {exc.code}") from None
            if exc.code == 404 and error.get("code") == "not_found.ban":
                return exc.code, {"error": error}
            raise CommandError(f"{error.get('code')}: {error.get('message')} {error.get('hint', '')}".strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CommandError(f"cannot reach the host at {self.url} ({reason}); is it running? (--url)") from None
        except ValueError:
            raise CommandError(f"{method} {self.url}{path} did not answer JSON; is --url a tkr-host?") from None

    def list(self) -> list[Ban]:
        _, body = self._call("GET", "/api/v1/bans")
        return [Ban.from_wire(item) for item in body.get("bans", [])]

    def lift(self, target: Target) -> Ban | None:
        status, body = self._call("DELETE", "/api/v1/bans/" + urllib.parse.quote(target.key, safe=""))
        return None if status == 404 else Ban.from_wire(body["lifted"])


def open_admin(args: argparse.Namespace) -> Admin:
    """Redis when the config says so and no ``--url`` is given; the host's admin API otherwise."""
    url: str | None = args.url
    settings: GuardSettings | None = None
    if url is None:
        host_settings, plugin_settings = load_config(args)
        found = plugin_settings.get(PLUGIN_NAME)
        if not isinstance(found, GuardSettings):
            raise CommandError(f"the {PLUGIN_NAME} plugin is disabled in {host_settings.where()}")
        settings = found
        if settings.backend == "redis":
            return RedisAdmin(settings)
        url = host_settings.host.public_url
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise CommandError(f"the bans live in the running host: give an admin token with --token or ${TOKEN_ENV}")
    return HttpAdmin(url, token)


def format_left(ban: Ban) -> str:
    return "until lifted" if ban.retry_after is None else f"{ban.retry_after:.0f} s"


def run_list(args: argparse.Namespace) -> int:
    bans = open_admin(args).list()
    if args.json:
        print(json.dumps([ban.to_wire() for ban in bans], indent=2))
        return 0
    if not bans:
        print("no bans")
        return 0
    rows = [("KIND", "TARGET", "LEFT", "REASON")] + [(b.target.kind, b.target.value, format_left(b), b.reason) for b in bans]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return 0


def run_lift(args: argparse.Namespace) -> int:
    try:
        target = Target.parse(args.target)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    ban = open_admin(args).lift(target)
    if ban is None:
        print(f"tkr-host bans: there is no ban on {target.describe()}", file=sys.stderr)
        return NOT_FOUND
    print(f"lifted the ban of {target.describe()} ({format_left(ban)} were left)")
    return 0


def guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CommandError as exc:
            print(f"tkr-host bans: {exc}", file=sys.stderr)
            return USAGE_ERROR

    return command


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--url", default=None, help="the host's base URL: use its admin API (default with the memory backend: [host] public_url)")
    parser.add_argument("--token", default=None, help=f"an admin token for the admin API (default: ${TOKEN_ENV})")


def add_bans_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bans = subcommands.add_parser("bans", help="list or lift the guard's bans",
                                  description="List or lift bans of addresses and principals placed by the guard plugin.")
    actions = bans.add_subparsers(dest="bans_action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the bans in force")
    listing.add_argument("--json", action="store_true", help="print JSON, as GET /api/v1/bans")
    _common(listing)
    listing.set_defaults(func=guarded(run_list))
    lift = actions.add_parser("lift", help="end a ban now")
    lift.add_argument("target", help="an address or a principal id (ip:ADDR or principal:ID when it could be either)")
    _common(lift)
    lift.set_defaults(func=guarded(run_lift))

    def usage(args: argparse.Namespace) -> int:
        bans.print_help(sys.stderr)
        return USAGE_ERROR

    bans.set_defaults(func=usage)
