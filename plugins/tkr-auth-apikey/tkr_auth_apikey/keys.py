"""What an API key looks like, how one is made, and how it is hashed.

A key is ``tkr_ak_`` followed by at least 32 random bytes in URL-safe base64
(43 characters or more). The prefix lets the host tell an API key from a JWT
without trying to parse it, and lets secret scanners recognise a leaked key.
Only the SHA-256 digest of the whole key (prefix included) is ever written into
the config.
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: Every key starts with this; a credential without it is not for this plugin.
PREFIX = "tkr_ak_"
#: Random bytes in a new key: 256 bits, so that guessing is hopeless and a fast
#: unsalted hash is safe (there is no low-entropy password to brute-force).
KEY_BYTES = 32
#: A key's body: URL-safe base64 of at least ``KEY_BYTES`` bytes, unpadded.
_BODY = re.compile(r"[A-Za-z0-9_-]{43,}")
#: Longer credentials are refused before hashing; a real key is 50 characters.
MAX_KEY_CHARS = 512
#: How a digest is written in the config: SHA-256 as 64 lowercase hex digits.
DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")


def new_key(nbytes: int = KEY_BYTES) -> str:
    """A fresh random key."""
    if nbytes < KEY_BYTES:
        raise ValueError(f"an API key needs at least {KEY_BYTES} random bytes")
    return PREFIX + secrets.token_urlsafe(nbytes)


def digest(key: str) -> str:
    """The SHA-256 hex digest of ``key`` as it goes into the config (``printf %s KEY | sha256sum``)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def has_prefix(token: str) -> bool:
    """Whether ``token`` claims to be an API key (and so is this plugin's to judge)."""
    return token.startswith(PREFIX)


def well_formed(key: str) -> bool:
    """Whether ``key`` has the shape of a key this plugin makes: prefix and a long enough body."""
    return has_prefix(key) and _BODY.fullmatch(key[len(PREFIX) :]) is not None
