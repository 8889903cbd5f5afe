"""Minting HS* tokens, for development, tests and the ``tkr-host token`` command.

Only shared-secret configs can mint: with RS*/ES*/PS* the host holds the public
key alone, and tokens come from whoever holds the private key.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

import jwt

from tkr_auth_jwt.settings import JwtSettings
from tkr_auth_jwt.verify import KINDS, KINDS_TEXT
from tkr_host import has_hidden_characters

_TTL = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: A year and a day: a longer-lived token is a mistake, not a convenience.
MAX_TTL_S = 366 * 86400


class MintError(ValueError):
    """Bad input, or a config that cannot mint; the message is one line for a person."""


def parse_ttl(text: str) -> int:
    """Seconds in a duration like ``90s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds)."""
    match = _TTL.match(text.strip().lower())
    if match is None:
        raise MintError(f"TTL {text!r} is not a duration like 90s, 30m, 1h or 2d")
    seconds = round(float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if seconds <= 0:
        raise MintError(f"TTL {text!r} must be at least one second")
    if seconds > MAX_TTL_S:
        raise MintError(f"TTL {text!r} is longer than the maximum of 366d")
    return seconds


def mint_token(
    settings: JwtSettings,
    sub: str,
    kind: str = "user",
    ttl_s: int | None = None,
    name: str | None = None,
    roles: Sequence[str] = (),
    now: float | None = None,
) -> str:
    """A token the same settings will verify, valid for ``ttl_s`` (default ``default_ttl_s``)."""
    algorithm = settings.hmac_algorithm
    secret = settings.keys.secret
    if algorithm is None or secret is None:
        raise MintError(
            f"algorithms is {', '.join(settings.algorithms)}: this host holds only the public key and cannot sign; mint tokens where the private key lives"
        )
    if not sub or not sub.strip() or len(sub) > 200:
        raise MintError("sub must be a non-empty id of at most 200 characters")
    if kind not in KINDS:
        raise MintError(f"kind must be {KINDS_TEXT}, not {kind!r}")
    ttl = settings.default_ttl_s if ttl_s is None else ttl_s
    if not 0 < ttl <= MAX_TTL_S:
        raise MintError("the TTL must be between one second and 366 days")
    if ttl > settings.max_ttl_s:
        raise MintError(f"the TTL of {ttl} s is longer than max_ttl_s ({settings.max_ttl_s} s): the host would refuse the token")
    if has_hidden_characters(sub):
        raise MintError("sub must not hold control or invisible characters")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": sub,
        "kind": kind,
        "iat": issued,
        "exp": issued + ttl,
        # A unique id lets a future deny-list name one token.
        "jti": secrets.token_urlsafe(12),
    }
    if name:
        claims["name"] = name
    if roles:
        claims["roles"] = list(roles)
    if settings.issuer is not None:
        claims["iss"] = settings.issuer
    if settings.audience is not None:
        claims["aud"] = settings.audience
    return jwt.encode(claims, secret, algorithm=algorithm)
