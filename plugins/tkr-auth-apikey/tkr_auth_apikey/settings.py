"""The ``[plugins.auth_apikey]`` config table.

The table holds SHA-256 digests of keys, never keys: whoever reads the config
file (or a backup of it, or a diff in a review) learns nothing that opens a
connection. Each entry names the principal its key stands for.

Validation builds the digest → principal table once, so that checking a key on
connect is one hash and one dictionary lookup.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_core import PydanticCustomError

from tkr_auth_apikey.keys import DIGEST_PATTERN, PREFIX
from tkr_host import Principal, PrincipalKind

#: The plugin's entry-point name: its config table and its key in ``host.config``.
PLUGIN_NAME = "auth_apikey"
KINDS: tuple[PrincipalKind, ...] = ("user", "agent", "service")
KINDS_TEXT = "user, agent or service"

Role = Annotated[str, Field(min_length=1, max_length=200)]


class ApiKeyEntry(BaseModel):
    """One key: the digest of the key, and the principal a connect with it becomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: SHA-256 of the whole key (prefix included), as 64 lowercase hex digits.
    sha256: str
    #: The principal id.
    sub: str = Field(min_length=1, max_length=200)
    #: The principal kind; only ``agent`` may connect to /agents.
    kind: PrincipalKind = "agent"
    #: The display name; the id is shown when it is empty.
    name: str = Field(default="", max_length=200)
    #: The principal's roles.
    roles: tuple[Role, ...] = ()

    @field_validator("sha256")
    @classmethod
    def _a_digest(cls, value: str) -> str:
        if value.startswith(PREFIX):
            raise _config_error(
                "this is an API key, not its digest: never write a key into the config. "
                "That key is now exposed; make a new one with `tkr-host apikey new` and paste the line it prints"
            )
        if DIGEST_PATTERN.fullmatch(value.lower()) and not DIGEST_PATTERN.fullmatch(value):
            raise _config_error("write the SHA-256 digest in lowercase hex")
        if not DIGEST_PATTERN.fullmatch(value):
            raise _config_error(f"must be a SHA-256 digest: 64 lowercase hex digits (got {len(value)} characters)")
        return value

    @field_validator("sub")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _config_error("must not be blank")
        return value

    def principal(self) -> Principal:
        return Principal(id=self.sub, kind=self.kind, name=self.name, roles=self.roles)


class ApiKeySettings(BaseModel):
    """The keys this host accepts. With none, no API key authenticates."""

    # Frozen: the lookup table is built from ``keys`` once.
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The accepted keys, as digests. Several keys may name the same ``sub`` (for rotation).
    keys: tuple[ApiKeyEntry, ...] = ()

    _by_digest: dict[str, Principal] = PrivateAttr(default_factory=dict)

    @field_validator("keys", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        # An environment variable (TKR_PLUGINS__AUTH_APIKEY__KEYS, or keys = "env:NAME")
        # arrives as a string: read it as a JSON array of tables.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise _config_error("as a string (from an environment variable), keys must be a JSON array of tables") from None
        return value

    @field_validator("keys")
    @classmethod
    def _unique_digests(cls, value: tuple[ApiKeyEntry, ...]) -> tuple[ApiKeyEntry, ...]:
        first: dict[str, int] = {}
        for index, entry in enumerate(value):
            if entry.sha256 in first:
                raise _config_error(
                    f"keys[{index}] repeats the sha256 of keys[{first[entry.sha256]}]; one key cannot stand for two principals: remove one"
                )
            first[entry.sha256] = index
        return value

    def model_post_init(self, context: object, /) -> None:
        self._by_digest = {entry.sha256: entry.principal() for entry in self.keys}

    def lookup(self, sha256: str) -> Principal | None:
        """The principal whose key has this digest, or None.

        A plain dictionary lookup, not ``hmac.compare_digest`` over every entry:
        its timing can only tell an attacker how much of the *digest* of the key
        they sent matches a stored digest, and a digest is not a key. Turning a
        matching digest into a key would take a SHA-256 preimage of 256 random
        bits, so nothing secret-equivalent is compared here.
        """
        return self._by_digest.get(sha256)


def _config_error(message: str) -> PydanticCustomError:
    # A custom error keeps the message as written: a plain ValueError would be
    # shown as "Value error, ..." in the host's config error line.
    return PydanticCustomError("auth_apikey_config", message)
