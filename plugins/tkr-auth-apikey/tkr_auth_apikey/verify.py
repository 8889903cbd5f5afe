"""Checking a presented API key and naming its principal.

Every refusal is ``auth.invalid`` with a stable ``details.reason``
(``too_long``, ``malformed``, ``unknown_key``). Messages never echo the key, its
digest, or whether some principal exists.
"""

from __future__ import annotations

from tkr_auth_apikey.keys import MAX_KEY_CHARS, digest, well_formed
from tkr_auth_apikey.settings import ApiKeySettings
from tkr_host import HostError, Principal

_NEW_KEY_HINT = "Use the API key issued for this host; if it was revoked or never added, ask the host's operator for a new one."


def verify_key(settings: ApiKeySettings, key: str) -> Principal:
    """The principal ``key`` stands for; raise ``HostError("auth.invalid")`` for any other key."""
    if len(key) > MAX_KEY_CHARS:
        raise invalid("too_long", f"The API key is longer than {MAX_KEY_CHARS} characters.", _NEW_KEY_HINT)
    if not well_formed(key):
        raise invalid(
            "malformed",
            "The API key is incomplete or altered: after `tkr_ak_` it needs at least 43 URL-safe base64 characters.",
            "Copy the whole key exactly as `tkr-host apikey new` printed it, with no spaces or line breaks.",
        )
    principal = settings.lookup(digest(key))
    if principal is None:
        raise invalid("unknown_key", "This API key is not accepted by this host.", _NEW_KEY_HINT)
    return principal


def invalid(reason: str, message: str, hint: str) -> HostError:
    """An ``auth.invalid`` error; ``reason`` is a stable word for programs."""
    return HostError("auth.invalid", message=message, hint=hint, details={"reason": reason})
