"""The guard of one host: scores events, places and checks bans, and closes the
sockets of banned sources.

One ``Guard`` per host, built at ``host_startup`` and kept in
``host.extensions["guard"]``; the hook implementations in ``__init__`` call it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from tkr_guard.backends import Backend, Ban, MemoryBackend, RedisBackend
from tkr_guard.idle import IdleReaper
from tkr_guard.scoring import Policy, Target, matches
from tkr_guard.settings import PLUGIN_NAME, GuardSettings
from tkr_host import HostAPI, HostError, SecurityEvent

log = logging.getLogger(__name__)

#: Seconds between a ban and the closing of the banned sockets (see ``_disconnect``).
KICK_GRACE_S = 0.05


def make_backend(settings: GuardSettings) -> Backend:
    if settings.backend == "redis":
        assert settings.redis_url is not None  # the settings model requires it
        return RedisBackend(settings.redis_url, settings.key_prefix, settings.window_s, settings.redis_timeout_s)
    return MemoryBackend(settings.window_s, settings.memory_max_sources)


def banned_error(ban: Ban) -> HostError:
    """What a banned source is told, at connect or just before it is disconnected."""
    what = "address" if ban.target.kind == "ip" else "account"
    if ban.retry_after is None:
        return HostError("auth.banned", message=f"This {what} is banned after repeated suspicious activity.",
                         hint="Ask the host's operator to lift the ban.", details={"kind": ban.target.kind})
    wait = math.ceil(ban.retry_after)
    return HostError("auth.banned", message=f"This {what} is banned for {wait} more seconds after repeated suspicious activity.",
                     hint=f"Wait {wait} s, then reconnect.", retry_after=ban.retry_after, details={"kind": ban.target.kind})


class Guard:
    def __init__(self, host: HostAPI, settings: GuardSettings, backend: Backend | None = None) -> None:
        self.host = host
        self.settings = settings
        self.policy = Policy.from_settings(settings)
        self.backend = backend if backend is not None else make_backend(settings)
        self.reaper = IdleReaper(host, settings.idle_timeout_s) if settings.idle_timeout_s > 0 else None
        #: Sockets already told they are banned and not gone yet: told once.
        self.kicking: set[tuple[str, str]] = set()
        self.bans_set = Counter("tkr_bans", "Bans the guard set on this node, by target kind (ip or principal)", ["kind"],
                                registry=host.metrics.registry)
        self._watch: asyncio.Task[Any] | None = None

    @classmethod
    def of(cls, host: HostAPI) -> Guard | None:
        guard = host.extensions.get(PLUGIN_NAME)
        return guard if isinstance(guard, Guard) else None

    async def start(self) -> None:
        """Open the backend and start the background tasks; on failure, close what was opened."""
        try:
            await self.backend.start()
            if self.backend.shared:
                # Subscribed before the first connect, so that no ban is missed.
                await self.backend.subscribe()
                self._watch = self.host.spawn(self.backend.watch(self._banned_elsewhere))
        except BaseException:
            await self.backend.close()
            raise
        if self.reaper is not None:
            self.reaper.start()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self.reaper is not None:
            await self.reaper.stop()
        await self.backend.close()

    # --- scoring ------------------------------------------------------------------

    async def observe(self, event: SecurityEvent) -> list[Ban]:
        """Count the event against its sources; ban them when one crosses a threshold."""
        charge = self.policy.charge(event)
        sources = self.policy.sources(event)
        if charge is None or not sources:
            return []
        try:
            tallies = await self.backend.record(sources, charge)
            reason = self.policy.verdict(tallies)
            if reason is None:
                return []
            bans = await self.backend.ban(sources, reason, self.policy.ban_s)
        except Exception as exc:
            log.warning("guard: could not count a %s event from %s (%s)", event.kind, event.peer, exc)
            return []
        for ban in bans:
            log.warning("guard: banned %s for %g s: %s", ban.target.describe(), self.policy.ban_s, reason)
            self.bans_set.labels(ban.target.kind).inc()
        try:
            await self.backend.publish(bans)
        except Exception as exc:
            log.warning("guard: could not tell the other nodes of a ban (%s)", exc)
        self.kick(bans)
        return bans

    # --- bans -----------------------------------------------------------------------

    async def check(self, target: Target) -> None:
        """Raise ``auth.banned`` when the target is banned.

        When the backend fails (Redis is down), the connect goes through and the
        failure is logged: a broken ban store must not lock everybody out.
        """
        if target.kind == "ip" and self.policy.is_exempt(target.value):
            return
        try:
            ban = await self.backend.ban_of(target)
        except Exception as exc:
            log.warning("guard: could not check the ban of %s (%s); letting it through", target.describe(), exc)
            return
        if ban is not None:
            raise banned_error(ban)

    async def lift(self, target: Target) -> Ban | None:
        ban = await self.backend.lift(target)
        if ban is not None:
            log.warning("guard: lifted the ban of %s", target.describe())
        return ban

    async def bans(self) -> list[Ban]:
        return await self.backend.bans()

    def kick(self, bans: Sequence[Ban]) -> int:
        """Tell each live socket of the banned sources why, then close it (in the background)."""
        connections = self.host.list_connections()
        self.kicking &= {(conn.namespace, conn.sid) for conn in connections}
        told = 0
        for conn in connections:
            key = (conn.namespace, conn.sid)
            if key in self.kicking:
                continue
            ban = next((ban for ban in bans if matches(ban.target, conn.peer, conn.principal.id)), None)
            if ban is None:
                continue
            self.kicking.add(key)
            self.host.spawn(self._disconnect(conn.sid, conn.namespace, banned_error(ban)))
            told += 1
        return told

    async def _disconnect(self, sid: str, namespace: str, error: HostError) -> None:
        # The event that caused the ban is still being answered: let its ack
        # leave before the transport closes, so the client is not left waiting.
        await asyncio.sleep(KICK_GRACE_S)
        await self.host.disconnect_client(sid, namespace, error)

    async def _banned_elsewhere(self, ban: Ban) -> None:
        self.kick([ban])

    def forget(self, sid: str, namespace: str) -> None:
        """A socket left: drop what the guard remembered about it."""
        self.kicking.discard((namespace, sid))
        if self.reaper is not None:
            self.reaper.forget(sid, namespace)
