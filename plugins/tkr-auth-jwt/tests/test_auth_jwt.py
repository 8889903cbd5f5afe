"""Through the real host: credentials in the auth payload or a Bearer header, refusals as connect_error."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio

from tkr_host.testing import RunningHost, connect_client

Connect = Callable[..., Awaitable[socketio.AsyncClient]]
Token = Callable[..., str]


async def refused(connect: Connect, *args: Any, **options: Any) -> dict[str, Any]:
    """The Error the host sent with ``connect_error``."""
    with pytest.raises(socketio.exceptions.ConnectionError) as caught:
        await connect(*args, **options)
    error = next(arg for arg in caught.value.args if isinstance(arg, dict))
    assert set(error) >= {"code", "category", "severity", "message", "hint", "recoverable", "request_id"}
    assert error["hint"]
    assert "Traceback" not in error["message"]
    return error


def principal_of(running: RunningHost, client: socketio.AsyncClient, namespace: str = "/chat") -> Any:
    connection = running.host.connection(client.get_sid(namespace), namespace)
    assert connection is not None
    return connection.principal


async def test_a_token_in_the_auth_payload_connects_as_its_principal(tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
    client = await tkr_connect(tkr_token("alice", kind="agent", name="Alice", roles=["ops"]))
    principal = principal_of(tkr_host, client)
    assert (principal.id, principal.kind, principal.name, principal.roles) == ("alice", "agent", "Alice", ("ops",))


async def test_an_explicit_auth_payload_works_too(tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
    client = await tkr_connect(auth={"token": tkr_token("carol")})
    assert principal_of(tkr_host, client).id == "carol"


async def test_a_bearer_header_connects(tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
    client = await tkr_connect(headers={"Authorization": f"Bearer {tkr_token('bob', kind='service')}"})
    principal = principal_of(tkr_host, client)
    assert (principal.id, principal.kind) == ("bob", "service")


async def test_no_credentials_is_auth_required(tkr_connect: Connect) -> None:
    assert (await refused(tkr_connect))["code"] == "auth.required"


async def test_an_expired_token_is_auth_expired(tkr_connect: Connect, tkr_token: Token) -> None:
    now = int(time.time())
    error = await refused(tkr_connect, tkr_token("alice", iat=now - 7200, exp=now - 3600))
    assert error["code"] == "auth.expired"


@pytest.mark.parametrize("token", ["a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."])
async def test_a_bad_token_is_auth_invalid(token: str, tkr_connect: Connect) -> None:
    error = await refused(tkr_connect, token)
    assert error["code"] == "auth.invalid"
    assert error["details"]["reason"] in {"malformed", "algorithm"}


async def test_a_credential_that_is_not_a_jwt_is_left_to_other_backends(tkr_connect: Connect) -> None:
    # With no other backend to accept it, the host itself refuses it.
    error = await refused(tkr_connect, "garbage")
    assert error["code"] == "auth.invalid"
    assert "No authentication plugin accepted" in error["message"]


async def test_a_token_signed_with_another_secret_is_auth_invalid(tkr_connect: Connect, tkr_token: Token) -> None:
    forged = tkr_token("alice", secret="not-the-host-secret-but-long-enough-for-hs256")
    error = await refused(tkr_connect, forged)
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "signature"})


async def test_a_bad_kind_claim_is_auth_invalid(tkr_connect: Connect, tkr_token: Token) -> None:
    error = await refused(tkr_connect, tkr_token("alice", kind="root"))
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "claims"})


async def test_a_token_in_the_url_is_ignored(tkr_host: RunningHost, tkr_token: Token) -> None:
    # PROTOCOL.md: a query-string token ends up in logs and is never accepted.
    url = f"{tkr_host.url}/?token={tkr_token('alice')}"
    error = await refused(connect_client, url)
    assert error["code"] == "auth.required"


class TestPublicKeyHost:
    """A host configured for RS256 with a public key file."""

    @pytest.fixture
    def tkr_settings(self, tkr_settings: dict[str, Any], rsa_key: Any) -> dict[str, Any]:
        tkr_settings["plugins"]["auth_jwt"] = {"algorithms": ["RS256"], "public_key_file": str(rsa_key.public_file)}
        return tkr_settings

    async def test_an_rs256_token_connects(
        self, tkr_host: RunningHost, tkr_connect: Connect, rsa_key: Any, encode: Callable[..., str], claims: Callable[..., dict[str, Any]]
    ) -> None:
        client = await tkr_connect(encode(claims(sub="dave"), rsa_key.private, "RS256"))
        assert principal_of(tkr_host, client).id == "dave"

    async def test_an_hs256_token_is_refused(self, tkr_connect: Connect, tkr_token: Token) -> None:
        error = await refused(tkr_connect, tkr_token("alice"))
        assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "algorithm"})
