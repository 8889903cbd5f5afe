"""Tokens that never expire, and ids with control characters (issue 7, item 4).

plugins/tkr-auth-jwt/README.md (Claims): `exp` is required and is an integer, as are
`nbf` and `iat` when present; a token whose lifetime (from `iat`, or from now
without it) is over `[plugins.auth_jwt] max_ttl_s` (default 86400 s) is refused;
`sub` holds no control characters. Each refusal is `auth.invalid`, on a socket
connect and on an HTTP request alike.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt
import pytest

from tkr_host.testing import TEST_JWT_SECRET, ConnectRefused

DAY = 86_400


def token(**claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "kind": "user", "iat": now, "exp": now + 600, **claims}
    return jwt.encode({key: value for key, value in body.items() if value is not None}, TEST_JWT_SECRET, algorithm="HS256")


def refused_tokens() -> list[tuple[str, str]]:
    now = int(time.time())
    return [
        ("exp as a numeric string", token(exp=str(now + 600))),
        ("exp as a float", token(exp=now + 600.0)),
        ("exp = 1e308", token(exp=1e308)),
        ("exp = true", token(exp=True)),
        ("exp far away", token(exp=2**62)),
        ("a lifetime of a day and a second", token(iat=now, exp=now + DAY + 1)),
        ("a lifetime of two days, no iat", token(iat=None, exp=now + 2 * DAY)),
        ("an old iat with a far exp", token(iat=now - DAY, exp=now + DAY)),
        ("nbf as a string", token(nbf=str(now))),
        ("nbf as a float", token(nbf=float(now))),
        ("iat as a string", token(iat=str(now))),
        ("iat as a float", token(iat=now + 0.5)),
        *[(f"sub with {name}", token(sub=sub)) for name, sub in [
            ("NUL", "bo\x00b"), ("a newline", "bob\nadmin"), ("an escape", "bob\x1b[31m"), ("DEL", "bob\x7f"),
            ("a C1 control", "bob\x85"), ("a bidi override", "\u202ebob"), ("a line separator", "bob\u2028"), ("a zero-width space", "b\u200bob"),
        ]],
    ]


#: So many refusals from one address would (rightly) ban it; bans have their own tests.
WITHOUT_BANS = pytest.mark.tkr_settings({"host": {"disable_plugins": ["guard", "ratelimit"]}})


@WITHOUT_BANS
async def test_tokens_that_could_live_forever_are_refused_at_connect(tkr_connect):
    for case, credential in refused_tokens():
        with pytest.raises(ConnectRefused) as refused:
            await tkr_connect(credential)
        assert refused.value.error["code"] == "auth.invalid", (case, refused.value.error)
        assert refused.value.error["hint"]


@WITHOUT_BANS
async def test_tokens_that_could_live_forever_are_refused_over_http(tkr_host, tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    async with aiohttp.ClientSession() as http:
        for case, credential in refused_tokens():
            async with http.get(f"{tkr_host.url}/api/v1/sessions/{session_id}/messages",
                                headers={"Authorization": f"Bearer {credential}"}) as response:
                body = await response.json(content_type=None)
                assert (response.status, body["error"]["code"]) == (401, "auth.invalid"), case


async def test_a_day_long_token_is_still_accepted(tkr_connect):
    now = int(time.time())
    for credential in (token(iat=now, exp=now + DAY), token(iat=None, exp=now + DAY - 60), token(nbf=now, exp=now + 60)):
        client = await tkr_connect(credential)
        assert client.connected


@pytest.mark.tkr_settings({"plugins": {"auth_jwt": {"max_ttl_s": 600, "default_ttl_s": 600}}})
async def test_max_ttl_s_is_configurable(tkr_connect):
    now = int(time.time())
    assert (await tkr_connect(token(iat=now, exp=now + 600))).connected
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(token(iat=now, exp=now + 601))
    assert refused.value.error["code"] == "auth.invalid"


async def test_tokens_minted_with_the_default_lifetime_are_accepted(tkr_host, tkr_connect):
    from tkr_auth_jwt.mint import mint_token
    from tkr_auth_jwt.settings import JwtSettings

    settings = tkr_host.host.config("auth_jwt", JwtSettings)
    assert settings.default_ttl_s <= settings.max_ttl_s == DAY
    assert (await tkr_connect(mint_token(settings, "alice"))).connected
    assert (await tkr_connect(mint_token(settings, "alice", ttl_s=DAY))).connected
