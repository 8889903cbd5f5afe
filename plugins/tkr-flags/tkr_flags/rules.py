"""Deciding a flag for a principal, with no I/O."""

from __future__ import annotations

import hashlib

from tkr_flags.settings import FlagRule, FlagsSettings
from tkr_host import Principal

#: Buckets per flag: percent is honoured to a hundredth of a percent.
BUCKETS = 10_000


def bucket(flag: str, principal: Principal) -> int:
    """The principal's bucket for ``flag``, in ``range(BUCKETS)``.

    Stable across processes and restarts (no ``hash()``, which is salted), and
    salted by the flag's name so that each flag picks its own share.
    """
    key = f"{flag}\x00{principal.kind}\x00{principal.id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS


def is_on(flag: str, rule: FlagRule, principal: Principal) -> bool:
    if rule.enabled:
        return True
    if f"{principal.kind}:{principal.id}" in rule.principals:
        return True
    if rule.roles and not set(rule.roles).isdisjoint(principal.roles):
        return True
    return bucket(flag, principal) < rule.percent * BUCKETS / 100


class FlagBook:
    """The flags in force; replaced whole when the config is reloaded."""

    def __init__(self, settings: FlagsSettings) -> None:
        self.settings = settings

    def enabled(self, flag: str, principal: Principal) -> bool | None:
        """On or off for ``principal``; None for a flag this book does not know."""
        rule = self.settings.flags.get(flag)
        return None if rule is None else is_on(flag, rule, principal)

    def for_principal(self, principal: Principal) -> dict[str, bool]:
        return {flag: is_on(flag, rule, principal) for flag, rule in sorted(self.settings.flags.items())}
