"""What the dispatcher tells plugins and other members, through a real host.

- docs/plugins.md (`on_error`): every error the host answers with is shown to the
  observers with its context, ``namespace``, ``event``, ``sid`` and ``principal_id``
  where known; a refused connect's event is ``connect``.
- `on_disconnect`: a socket that left, whatever the cause, with its principal, sid and
  namespace; the member goes `offline` in the sessions it followed
  (docs/protocol.md, Presence).
- docs/configuration.md (`allow_anonymous`): a connect without a credential is a
  `user` with the id `anonymous-<sid prefix>`; docs/protocol.md's table of codes:
  `auth.required` is for "a connect or HTTP request" without one, and the anonymous
  access covers connects only (an HTTP route answers 401).
- tkr-guard's README: a socket silent for `idle_timeout_s` is closed; the host stamps
  each event, so the silence counts from the last one.
- docs/protocol.md: nothing a client does raises an unhandled exception on the
  server: connecting to and leaving each namespace logs no error.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from tkr_host import Principal, hookimpl
from tkr_host.errors import HostError
from tkr_host.testing import ConnectRefused, eventually


class Observer:
    """A plugin that keeps what the error and disconnect hooks show it."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []
        self.disconnects: list[tuple[str, str, str]] = []
        self.connects: list[Principal] = []

    @hookimpl
    def on_connect(self, host: Any, principal: Principal, sid: str, namespace: str, peer: str) -> None:
        self.connects.append(principal)

    @hookimpl
    def on_error(self, host: Any, error: HostError, context: dict[str, Any]) -> None:
        self.errors.append((error.code, dict(context)))

    @hookimpl
    def on_disconnect(self, host: Any, principal: Principal, sid: str, namespace: str, reason: str) -> None:
        self.disconnects.append((principal.id, sid, namespace))


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
def tkr_plugins(observer: Observer) -> list[Any]:
    return [observer]


async def test_an_answered_error_is_shown_with_its_context(tkr_client: Any, observer: Observer) -> None:
    alice = await tkr_client("alice")
    ack = await alice.call("no:such-event", {})
    assert ack["error"]["code"] == "validation.unknown_event"
    sid = alice.sio.get_sid("/chat")
    assert observer.errors == [("validation.unknown_event",
                                {"namespace": "/chat", "event": "no:such-event", "sid": sid, "principal_id": "alice"})]


async def test_a_refused_connect_is_shown_as_the_connect_event(tkr_client: Any, observer: Observer) -> None:
    with pytest.raises(ConnectRefused):
        await tkr_client("alice", namespace="/agents")
    [(code, context)] = observer.errors
    assert code == "permission.namespace"
    assert (context["namespace"], context["event"]) == ("/agents", "connect")
    assert isinstance(context["sid"], str) and context["sid"]


async def test_a_socket_that_leaves_is_offline_in_its_sessions_and_shown_to_the_observers(tkr_client: Any, observer: Observer) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    await bob.join(session_id)
    sid = bob.sio.get_sid("/chat")
    await bob.close()
    offline = await alice.wait_for("presence", lambda p: p["state"] == "offline")
    assert offline == {"session_id": session_id, "member": {"id": "bob", "kind": "user"}, "state": "offline"}
    await eventually(lambda: ("bob", sid, "/chat") in observer.disconnects, what="bob's disconnect observed")


@pytest.mark.tkr_settings({"host": {"allow_anonymous": True}})
async def test_an_anonymous_socket_is_a_user_named_by_its_sid(tkr_client: Any, tkr_connect: Any, observer: Observer) -> None:
    anonymous = await tkr_connect(None)
    [principal] = observer.connects
    assert (principal.kind, principal.name) == ("user", "anonymous")
    session = (await anonymous.call("session:create", {}, namespace="/chat", timeout=5))["session"]
    creator = session["created_by"]
    assert creator.startswith("anonymous-") and len(creator) > len("anonymous-")
    assert anonymous.get_sid("/chat").startswith(creator.removeprefix("anonymous-"))
    assert session["members"] == [{"id": creator, "kind": "user"}] and creator == principal.id


@pytest.mark.tkr_settings({"host": {"allow_anonymous": True}})
async def test_anonymous_access_does_not_cover_http(tkr_host: Any) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/api/v1/sessions/s/messages") as response:
        body = await response.json(content_type=None)
    assert (response.status, body["error"]["code"]) == (401, "auth.required")


@pytest.mark.tkr_settings({"plugins": {"guard": {"idle_timeout_s": 1.0}}})
async def test_a_socket_silent_since_its_last_event_is_closed_as_idle(tkr_client: Any) -> None:
    # tkr-guard's README: a socket that sends no event for idle_timeout_s gets protocol.idle_timeout.
    alice = await tkr_client("alice")
    assert (await alice.ok("session:list"))["sessions"] == []
    told = await alice.wait_for("error", timeout=10)
    assert told["code"] == "protocol.idle_timeout"


async def test_connecting_and_leaving_every_namespace_logs_no_error(tkr_client: Any, observer: Observer,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    # docs/protocol.md: nothing a client does raises an unhandled exception on the server;
    # the clean-up of each namespace runs without one.
    clients = [await tkr_client("alice"), await tkr_client("echo", kind="agent", namespace="/agents"),
               await tkr_client("alice", namespace="/tasks")]
    sids = [client.sio.get_sid(client.namespace) for client in clients]
    for client in clients:
        await client.close()
    await eventually(lambda: {sid for _, sid, _ in observer.disconnects} >= set(sids), what="every disconnect observed")
    bad = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert bad == []
