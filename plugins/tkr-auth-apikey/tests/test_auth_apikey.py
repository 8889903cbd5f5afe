"""Through the real host: API keys in the auth payload or a Bearer header, alone or next to JWTs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio
from tkr_auth_apikey.keys import digest, new_key

from tkr_host.testing import ConnectRefused, RunningHost

Connect = Callable[..., Awaitable[socketio.AsyncClient]]
Token = Callable[..., str]

# Made per test process and never written anywhere; only digests go into the config.
AGENT_KEY = new_key()
USER_KEY = new_key()
SERVICE_KEY = new_key()
KEYS = [
    {"sha256": digest(AGENT_KEY), "sub": "ci-bot", "kind": "agent", "name": "CI bot", "roles": ["ci"]},
    {"sha256": digest(USER_KEY), "sub": "carol", "kind": "user"},
    {"sha256": digest(SERVICE_KEY), "sub": "indexer", "kind": "service"},
]

pytestmark = pytest.mark.tkr_settings({"plugins": {"auth_apikey": {"keys": KEYS}}})


async def refused(connect: Connect, *args: Any, **options: Any) -> dict[str, Any]:
    """The Error the host sent with ``connect_error``."""
    with pytest.raises(ConnectRefused) as caught:
        await connect(*args, **options)
    error = caught.value.error
    assert set(error) >= {"code", "category", "severity", "message", "hint", "recoverable", "request_id"}
    assert error["hint"]
    assert "Traceback" not in error["message"]
    return error


def principal_of(running: RunningHost, client: socketio.AsyncClient, namespace: str) -> Any:
    connection = running.host.connection(client.get_sid(namespace), namespace)
    assert connection is not None
    return connection.principal


async def test_an_agent_connects_to_agents_with_a_key_in_the_auth_payload(tkr_host: RunningHost, tkr_connect: Connect) -> None:
    client = await tkr_connect(AGENT_KEY, namespace="/agents")
    principal = principal_of(tkr_host, client, "/agents")
    assert (principal.id, principal.kind, principal.name, principal.roles) == ("ci-bot", "agent", "CI bot", ("ci",))


async def test_an_agent_connects_with_a_bearer_header(tkr_host: RunningHost, tkr_connect: Connect) -> None:
    client = await tkr_connect(namespace="/agents", headers={"Authorization": f"Bearer {AGENT_KEY}"})
    assert principal_of(tkr_host, client, "/agents").id == "ci-bot"


async def test_a_service_key_connects_to_chat_and_tasks(tkr_host: RunningHost, tkr_connect: Connect) -> None:
    for namespace in ("/chat", "/tasks"):
        client = await tkr_connect(SERVICE_KEY, namespace=namespace)
        assert principal_of(tkr_host, client, namespace).kind == "service"


async def test_an_unknown_key_is_auth_invalid(tkr_connect: Connect) -> None:
    unknown = new_key()
    error = await refused(tkr_connect, unknown, namespace="/agents")
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "unknown_key"})
    assert unknown not in str(error) and digest(unknown) not in str(error)


async def test_a_cut_off_key_is_auth_invalid_with_a_hint(tkr_connect: Connect) -> None:
    error = await refused(tkr_connect, AGENT_KEY[:30], namespace="/agents")
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "malformed"})
    assert "Copy the whole key" in error["hint"]


async def test_no_credentials_is_auth_required(tkr_connect: Connect) -> None:
    assert (await refused(tkr_connect, namespace="/agents"))["code"] == "auth.required"


async def test_a_user_key_is_refused_on_agents_but_works_on_chat(tkr_host: RunningHost, tkr_connect: Connect) -> None:
    error = await refused(tkr_connect, USER_KEY, namespace="/agents")
    assert error["code"] == "permission.namespace"
    client = await tkr_connect(USER_KEY, namespace="/chat")
    assert principal_of(tkr_host, client, "/chat").id == "carol"


async def test_both_backends_each_take_their_own_credentials(tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
    assert {"auth_jwt", "auth_apikey"} <= {name for name, _ in tkr_host.host.pm.list_name_plugin()}
    person = await tkr_connect(tkr_token("alice"), namespace="/chat")
    jwt_agent = await tkr_connect(tkr_token("echo", kind="agent"), namespace="/agents")
    key_agent = await tkr_connect(AGENT_KEY, namespace="/agents")
    assert principal_of(tkr_host, person, "/chat").id == "alice"
    assert principal_of(tkr_host, jwt_agent, "/agents").id == "echo"
    assert principal_of(tkr_host, key_agent, "/agents").id == "ci-bot"
    # Each backend still refuses what it recognises but cannot verify.
    assert (await refused(tkr_connect, tkr_token("mallory", secret="not-the-host-secret-but-long-enough-for-hs256")))["details"] == {"reason": "signature"}
    assert (await refused(tkr_connect, new_key()))["details"] == {"reason": "unknown_key"}


async def test_the_http_api_takes_a_key_as_bearer(tkr_host: RunningHost) -> None:
    url = f"{tkr_host.url}/api/v1/sessions/no-such-session/messages"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {AGENT_KEY}"}) as answer:
            assert answer.status == 404  # authenticated, then the session is not found
        async with http.get(url, headers={"Authorization": f"Bearer {new_key()}"}) as answer:
            assert answer.status == 401
            assert (await answer.json())["error"]["details"] == {"reason": "unknown_key"}


@pytest.mark.tkr_settings({"host": {"disable_plugins": ["auth_jwt"]}})
class TestApiKeysOnly:
    """``disable_plugins = ["auth_jwt"]``: API keys are the only backend."""

    async def test_a_jwt_is_refused_while_a_key_works(self, tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
        assert "auth_jwt" not in {name for name, plugin in tkr_host.host.pm.list_name_plugin() if plugin is not None}
        error = await refused(tkr_connect, tkr_token("echo", kind="agent"), namespace="/agents")
        assert error["code"] == "auth.invalid"
        assert "No authentication plugin accepted" in error["message"]
        client = await tkr_connect(AGENT_KEY, namespace="/agents")
        assert principal_of(tkr_host, client, "/agents").id == "ci-bot"

    async def test_no_credentials_is_still_auth_required(self, tkr_connect: Connect) -> None:
        assert (await refused(tkr_connect, namespace="/chat"))["code"] == "auth.required"


@pytest.mark.tkr_settings({"host": {"disable_plugins": ["auth_apikey"]}})
class TestJwtOnly:
    """``disable_plugins = ["auth_apikey"]``: a key is no credential at all."""

    async def test_a_key_is_refused_while_a_jwt_works(self, tkr_host: RunningHost, tkr_connect: Connect, tkr_token: Token) -> None:
        error = await refused(tkr_connect, AGENT_KEY, namespace="/agents")
        assert error["code"] == "auth.invalid"
        client = await tkr_connect(tkr_token("echo", kind="agent"), namespace="/agents")
        assert principal_of(tkr_host, client, "/agents").id == "echo"


@pytest.mark.tkr_settings({"plugins": {"auth_apikey": {"keys": []}}})
class TestNoKeys:
    """An empty key list is allowed: no API key authenticates, JWTs still do."""

    async def test_every_key_is_refused(self, tkr_connect: Connect, tkr_token: Token) -> None:
        errors = await asyncio.gather(*(refused(tkr_connect, key, namespace="/agents") for key in (AGENT_KEY, new_key())))
        assert [error["details"] for error in errors] == [{"reason": "unknown_key"}] * 2
        await tkr_connect(tkr_token("alice"))
