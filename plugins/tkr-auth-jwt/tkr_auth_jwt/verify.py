"""Verifying a token and turning its claims into a Principal.

No I/O happens here: the keys were loaded with the settings. The algorithms
come from the config only; a token's ``alg`` header can choose among them but
never add to them (RFC 8725 §2.1).

Every refusal is a ``HostError``: ``auth.expired`` for an expired token, else
``auth.invalid``, with a message that tells the user what is wrong with their
token and never PyJWT's exception text (which may echo claims or key details).
``details.reason`` gives programs a stable word for the cause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import jwt
from pydantic import ValidationError

from tkr_auth_jwt.keys import VerifyingKey
from tkr_auth_jwt.settings import JwtSettings
from tkr_host import HostError, Principal, has_hidden_characters

log = logging.getLogger(__name__)

KINDS = ("user", "agent", "service")
KINDS_TEXT = "user, agent or service"
#: Longer credentials are refused before any parsing: a real JWT is far smaller,
#: and base64-decoding megabytes per connect attempt would be a cheap attack.
MAX_TOKEN_CHARS = 8192
#: ``exp`` is required so that no token is valid forever; ``sub`` names the principal.
REQUIRED_CLAIMS = ["exp", "sub"]
#: The NumericDate claims. PyJWT takes any value ``int()`` accepts ("123",
#: 1e308), so this module checks their types and the times itself.
TIME_CLAIMS = ("exp", "nbf", "iat")

_OTHER_TOKEN_HINT = "Use a token issued for this host; sign in again to get one."


def verify_token(settings: JwtSettings, token: str) -> Principal:
    """The principal a valid token names; raise ``HostError`` for any other token."""
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid("too_long", f"The token is longer than {MAX_TOKEN_CHARS} characters.")
    key, algorithms = _select_key(settings, token)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=algorithms,
            # The signature, iss and aud are PyJWT's to check; the times are
            # checked below, once their types are known to be integers.
            options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            issuer=settings.issuer,
            audience=settings.audience,
            leeway=settings.leeway_s,
        )
    except jwt.PyJWTError as exc:
        log.debug("token refused: %s", type(exc).__name__)
        raise _explain(exc) from None
    except Exception:
        # Not expected from PyJWT, but a credential must never turn into an
        # internal error: refuse it, and keep the detail in the server log.
        log.warning("unexpected error while verifying a token", exc_info=True)
        raise invalid("malformed", "The token could not be read.") from None
    check_times(settings, claims, time.time())
    return principal_from_claims(claims)


def check_times(settings: JwtSettings, claims: Mapping[str, Any], now: float) -> None:
    """``exp``, ``nbf`` and ``iat`` are whole seconds, ``exp`` has not passed, the
    token is valid already, and it lives no longer than ``max_ttl_s``."""
    for name in TIME_CLAIMS:
        value = claims.get(name)
        # bool is an int to Python, and a float such as 1e308 would make a token
        # that never expires: only a JSON integer is a time here.
        if name in claims and (type(value) is not int):
            raise invalid("claims", f"The token's `{name}` claim must be a whole number of seconds since the epoch.")
    exp: int = claims["exp"]
    nbf: int | None = claims.get("nbf")
    iat: int | None = claims.get("iat")
    leeway = settings.leeway_s
    if exp <= now - leeway:
        raise HostError("auth.expired")
    if (nbf is not None and nbf > now + leeway) or (iat is not None and iat > now + leeway):
        raise _explain(jwt.ImmatureSignatureError())
    lifetime = exp - iat if iat is not None else exp - now - leeway
    if lifetime > settings.max_ttl_s:
        raise invalid("lifetime", f"The token is valid for longer than this host allows ({settings.max_ttl_s} s).",
                      "Ask the issuer for a token with a shorter lifetime.")


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Map verified claims to a Principal: ``sub`` → id, ``kind``, ``name``, ``roles``."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 200:
        raise invalid("claims", "The token's `sub` claim must be a non-empty string of at most 200 characters.")
    if has_hidden_characters(sub):
        raise invalid("claims", "The token's `sub` claim must not hold control or invisible characters.")
    kind = claims.get("kind", "user")
    if kind not in KINDS:
        raise invalid("claims", f"The token's `kind` claim must be {KINDS_TEXT}.")
    name = claims.get("name") or ""
    if not isinstance(name, str):
        raise invalid("claims", "The token's `name` claim must be a string.")
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise invalid("claims", "The token's `roles` claim must be a list of strings.")
    try:
        return Principal.model_validate({"id": sub, "kind": kind, "name": name, "roles": tuple(roles)})
    except ValidationError:
        raise invalid("claims", "The token's claims do not describe a valid principal.") from None


def invalid(reason: str, message: str, hint: str | None = None) -> HostError:
    """An ``auth.invalid`` error; ``reason`` is a stable word for programs."""
    return HostError("auth.invalid", message=message, hint=hint, details={"reason": reason})


def _select_key(settings: JwtSettings, token: str) -> tuple[bytes | VerifyingKey, list[str]]:
    """The key and algorithms to verify ``token`` with.

    With a key set, the unverified header's ``kid`` only chooses among the
    configured keys, and each key verifies only the algorithm it was published for.
    """
    keys = settings.keys
    if not keys.jwks:
        return keys.single_key(), settings.algorithms
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid("malformed", "The token is not a well-formed JWT.") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid("unknown_key", "The token does not name its signing key (no `kid` header).", _OTHER_TOKEN_HINT)
    jwk = keys.jwks.get(kid)
    if jwk is None:
        raise invalid(
            "unknown_key",
            "The token was signed with a key this host does not know.",
            "Use a token from the issuer this host trusts; after a key rotation the host needs the new key set.",
        )
    key: VerifyingKey = jwk.key
    return key, [jwk.algorithm_name]


def _explain(exc: jwt.PyJWTError) -> HostError:
    """What to tell the client about a refused token, without PyJWT's own text."""
    if isinstance(exc, jwt.ImmatureSignatureError):
        return invalid(
            "not_yet_valid",
            "The token is not valid yet: its `nbf` or `iat` lies in the future.",
            "Check the clock of the machine that issued it, or wait until the token becomes valid.",
        )
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return invalid("missing_claim", f"The token has no `{exc.claim}` claim, which this host requires.", _OTHER_TOKEN_HINT)
    if isinstance(exc, jwt.InvalidIssuerError):
        return invalid("issuer", "The token was issued by an issuer this host does not trust.", _OTHER_TOKEN_HINT)
    if isinstance(exc, jwt.InvalidAudienceError):
        return invalid("audience", "The token is meant for another audience.", _OTHER_TOKEN_HINT)
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return invalid("algorithm", "The token is signed with an algorithm this host does not accept.", _OTHER_TOKEN_HINT)
    if isinstance(exc, jwt.InvalidSignatureError):
        return invalid("signature", "The token's signature does not match: it was altered, or not issued for this host.", _OTHER_TOKEN_HINT)
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return invalid("claims", "The token's `iat` claim must be a number.")
    if isinstance(exc, jwt.DecodeError):
        return invalid("malformed", "The token is not a well-formed JWT, or its `exp` or `nbf` is not a number.")
    return invalid("invalid", "The token is not valid.")
