"""The load's credentials: HS256 tokens for the JWT secret each run gives the host."""

from __future__ import annotations

import time

import jwt


def make_token(sub: str, secret: str, ttl: int = 3600, kind: str = "user") -> str:
    """An HS256 token as ``tkr_host.testing.make_token`` mints them (sub, kind, iat, exp)."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "kind": kind, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")
