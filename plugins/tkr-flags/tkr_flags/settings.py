"""The ``[plugins.flags]`` table: one rule per flag.

```toml
[plugins.flags.flags]
task_panel = true                                   # on for everyone
new_composer = { percent = 10 }                     # on for a stable 10 % of principals
beta_search = { principals = ["user:alice", "agent:planner"], roles = ["beta"] }
```

A flag is on for a principal when any part of its rule says so: ``enabled``, the
principal named in ``principals``, one of its roles in ``roles``, or its bucket
under ``percent``. A flag that is not listed is off.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Flag names as the page and plugins spell them.
FLAG_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
KINDS = ("user", "agent", "service")


class FlagRule(BaseModel):
    """Who a flag is on for."""

    model_config = ConfigDict(extra="forbid")

    #: On for every principal.
    enabled: bool = False
    #: On for this share of principals, 0–100; the same principal always falls
    #: in the same bucket of a flag, so raising the share only adds principals.
    percent: float = Field(default=0.0, ge=0.0, le=100.0)
    #: Principals, as ``kind:id`` (``user:alice``, ``agent:echo``); a bare id
    #: means a user. The kind is part of the name, so an agent called ``alice``
    #: is not the user ``alice``.
    principals: list[str] = Field(default_factory=list, max_length=10_000)
    #: Roles (the principal's ``roles``) the flag is on for.
    roles: list[str] = Field(default_factory=list, max_length=1_000)

    @field_validator("principals")
    @classmethod
    def _qualified(cls, names: list[str]) -> list[str]:
        return [qualify(name) for name in names]


def qualify(name: str) -> str:
    """``alice`` → ``user:alice``; ``agent:echo`` stays as it is."""
    kind, sep, rest = name.partition(":")
    if sep and kind in KINDS:
        if not rest:
            raise ValueError(f"{name!r} names a kind but no id")
        return name
    return f"user:{name}"


class FlagsSettings(BaseModel):
    """The ``[plugins.flags]`` table."""

    model_config = ConfigDict(extra="forbid")

    #: Each flag's rule; ``true``/``false`` is shorthand for ``{enabled = …}``.
    flags: dict[str, FlagRule] = Field(default_factory=dict, max_length=1_000)

    @field_validator("flags", mode="before")
    @classmethod
    def _shorthand(cls, flags: object) -> object:
        if not isinstance(flags, dict):
            return flags
        for name in flags:
            if not isinstance(name, str) or not FLAG_NAME.match(name):
                raise ValueError(f"flag name {name!r} must match {FLAG_NAME.pattern}")
        return {name: {"enabled": rule} if isinstance(rule, bool) else rule for name, rule in flags.items()}
