"""What an event is worth, whom it counts against, and when a source is banned.

Pure: no I/O and no clock of its own. Every function that needs the time takes
``now`` (seconds on any monotonic clock), so the rules are tested without
waiting, and both backends apply exactly the same ones.

A **source** is an address (``ip:203.0.113.7``) or a principal
(``principal:alice``). An event counts against its address and, where known,
its principal. Each source has a **tally** that opens with its first event and
lasts ``window_s``: the number of auth failures, and the weighted score of the
other events. When either crosses its threshold, every source of that event is
banned for ``ban_s``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tkr_host import SecurityEvent

TargetKind = Literal["ip", "principal"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Auth failures that are no evidence of guessing. Our own refusal is reported
#: by the host as an auth failure, and counting it would keep a ban alive for as
#: long as the client retries. An expired token was genuinely signed: a browser
#: tab left open reconnects with it again and again, and must not ban its office.
NOT_COUNTED = frozenset({"auth.banned", "auth.expired"})


@dataclass(frozen=True, order=True)
class Target:
    """A source that can be banned: an address or a principal id."""

    kind: TargetKind
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Target:
        """``ip:ADDR``, ``principal:ID``, or a bare value: an address when it parses as one."""
        text = text.strip()
        kind, sep, rest = text.partition(":")
        if sep and kind in ("ip", "principal") and rest:
            return cls(kind, _normal_ip(rest) if kind == "ip" else rest)  # type: ignore[arg-type]
        try:
            return cls("ip", _normal_ip(text))
        except ValueError:
            pass
        if not text:
            raise ValueError("a ban target is an address or a principal id; got an empty string")
        return cls("principal", text)

    @classmethod
    def from_key(cls, key: str) -> Target:
        kind, _, value = key.partition(":")
        if kind not in ("ip", "principal") or not value:
            raise ValueError(f"not a target key: {key!r}")
        return cls(kind, value)  # type: ignore[arg-type]

    def describe(self) -> str:
        return f"address {self.value}" if self.kind == "ip" else f"principal {self.value!r}"


def _normal_ip(text: str) -> str:
    address = _address(text.strip())
    if address is None:
        raise ValueError(f"{text!r} is not an IP address")
    return str(address)


@dataclass(frozen=True)
class Charge:
    """What one event adds to each of its sources' tallies."""

    auth_failures: int
    score: float


@dataclass
class Tally:
    """One source's counts since ``opened_at``."""

    opened_at: float
    auth_failures: int = 0
    score: float = 0.0

    def expired(self, now: float, window_s: float) -> bool:
        return now - self.opened_at >= window_s

    def add(self, charge: Charge) -> Tally:
        self.auth_failures += charge.auth_failures
        self.score += charge.score
        return self


def add_to(tally: Tally | None, charge: Charge, now: float, window_s: float) -> Tally:
    """The source's tally after ``charge``: a new window when there is none or it ended."""
    if tally is None or tally.expired(now, window_s):
        tally = Tally(opened_at=now)
    return tally.add(charge)


@dataclass(frozen=True)
class Policy:
    """The rules of ``[plugins.guard]``, ready to apply."""

    ban_after_auth_failures: int
    ban_after_events: float
    weights: Mapping[str, float]
    window_s: float
    ban_s: float
    exempt: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            ban_after_auth_failures=settings.ban_after_auth_failures,
            ban_after_events=settings.ban_after_events,
            weights=settings.weights(),
            window_s=settings.window_s,
            ban_s=settings.ban_s,
            exempt=tuple(ipaddress.ip_network(entry, strict=False) for entry in settings.exempt),
        )

    def charge(self, event: SecurityEvent) -> Charge | None:
        """What the event costs its sources, or None when it is not counted."""
        if event.kind == "auth_failure":
            return None if event.detail in NOT_COUNTED else Charge(1, 0.0)
        weight = self.weights.get(event.kind, 0.0)
        return Charge(0, weight) if weight > 0 else None

    def sources(self, event: SecurityEvent) -> list[Target]:
        """Whom the event counts against: its address unless exempt or unknown, and its principal."""
        found: list[Target] = []
        address = _address(event.peer)
        if address is not None and not self.is_exempt(address):
            found.append(Target("ip", str(address)))
        if event.principal_id:
            found.append(Target("principal", event.principal_id))
        return found

    def is_exempt(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> bool:
        ip = _address(address) if isinstance(address, str) else address
        return ip is not None and any(ip in net for net in self.exempt)

    def crossed(self, tally: Tally) -> str | None:
        """Why this tally bans its source, or None."""
        window = f"{self.window_s:g} s"
        if tally.auth_failures >= self.ban_after_auth_failures:
            return f"{tally.auth_failures} failed authentications within {window}"
        if tally.score >= self.ban_after_events:
            return f"a suspicious-activity score of {tally.score:g} within {window}"
        return None

    def verdict(self, tallies: Iterable[Tally]) -> str | None:
        """The first reason any of the event's sources is to be banned."""
        return next((reason for reason in map(self.crossed, tallies) if reason is not None), None)


def _address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer as an address; an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) as its IPv4 self."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def matches(target: Target, peer: str, principal_id: str) -> bool:
    """Does a connection from ``peer`` as ``principal_id`` belong to ``target``?"""
    if target.kind == "principal":
        return principal_id == target.value
    address = _address(peer)
    return address is not None and str(address) == target.value


def sort_bans(items: Sequence[Any]) -> list[Any]:
    """Bans by kind (addresses first), then value: a stable listing."""
    return sorted(items, key=lambda ban: (ban.target.kind, ban.target.value))
