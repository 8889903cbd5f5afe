"""No error echoes what the client sent (issue 7, item 7: `There is no session '<script>…'`).

docs/protocol.md (Error): "The input is never echoed back." A marker is put in
every place a client controls (ids, names, keys, tags, event and namespace names,
URL parts), and no answer may carry it, in its message, hint or details.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tkr_host.testing import ConnectRefused

MARK = "<script>zq81</script>"
#: Where a field takes only `[a-z0-9_.-]` (message types), the marker's letters.
PLAIN_MARK = "zq81-mark"


def assert_no_echo(answer: Any, where: str) -> None:
    text = json.dumps(answer, ensure_ascii=False)
    assert "zq81" not in text, (where, answer)


def send(session_id: str, **fields: Any) -> dict[str, Any]:
    return {"session_id": session_id, "client_id": f"c-{len(json.dumps(fields))}-{sorted(fields)}"[:64], "type": "text",
            "payload": {"text": "hi"}, **fields}


async def test_no_socket_error_echoes_the_input(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    created = await alice.call("message:send", send(session_id, client_id="t-mark", type="task",
                                                    payload={"task_id": MARK, "action": "create"}))
    assert created["ok"], created
    chat_cases: list[tuple[str, dict[str, Any]]] = [
        ("session:join", {"session_id": MARK}),
        ("message:history", {"session_id": MARK}),
        ("message:receipt", {"session_id": MARK, "seq": 1, "status": "read"}),
        ("session:invite", {"session_id": MARK, "member": {"id": "bob", "kind": "user"}}),
        ("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": MARK}}),
        ("message:send", send(MARK)),
        ("message:send", send(session_id, to=MARK)),
        ("message:send", send(session_id, in_reply_to=MARK)),
        ("message:send", send(session_id, type=PLAIN_MARK)),
        ("message:send", {**send(session_id), MARK: 1}),
        ("message:send", send(session_id, payload={"text": "hi", MARK: 1})),
        ("message:send", send(session_id, payload={"text": "hi", "format": MARK})),
        ("message:send", send(session_id, type="task", payload={"task_id": MARK, "action": "create"})),
        ("message:send", send(session_id, type="task", payload={"task_id": MARK + "x", "action": "update"})),
        ("message:send", send(session_id, type="task", payload={"task_id": "t", "action": "create", "assignee": MARK})),
        ("message:send", send(session_id, type="task", payload={"task_id": "t2", "action": "create",
                                                                "artifact": {"artifact_id": "a", "parts": [{"kind": MARK}]}})),
        ("message:send", send(session_id, type="context", payload={"context_id": "c", "data": {}, "targets": ["echo", MARK]})),
        ("message:send", send(session_id, type="poll", payload={"action": "vote", "poll_id": MARK, "option": 0})),
        ("message:send", send(session_id, type="poll", payload={"action": MARK})),
        (MARK, {}),
        ("session:list", {MARK: MARK}),
    ]
    for event, payload in chat_cases:
        ack = await alice.call(event, payload)
        assert ack["ok"] is False, (event, payload, ack)
        assert_no_echo(ack, f"/chat {event} {payload}")

    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    for event, payload in [("message:ack", {"message_id": MARK}), ("stream:chunk", {"message_id": MARK, "delta": "x"}),
                           ("stream:end", {"message_id": MARK}), ("context:list", {"session_id": MARK}),
                           ("stream:start", {"session_id": session_id, "to": MARK}), ("stream:start", {"session_id": MARK}),
                           ("stream:start", {"session_id": session_id, "in_reply_to": MARK})]:
        ack = await echo.call(event, payload)
        assert ack["ok"] is False, (event, ack)
        assert_no_echo(ack, f"/agents {event}")

    tasks = await tkr_client("mallory", namespace="/tasks")
    for event in ("task:get", "task:subscribe", "task:unsubscribe"):
        for task_id in (MARK, MARK + "x"):  # one that exists in a session mallory is not in, one that does not exist
            ack = await tasks.call(event, {"session_id": session_id, "task_id": task_id})
            assert ack["ok"] is False, ack
            assert_no_echo(ack, f"/tasks {event}")


async def test_no_refused_connect_echoes_the_namespace(tkr_connect, tkr_token):
    with pytest.raises(ConnectRefused) as refused:
        await tkr_connect(tkr_token("alice"), namespace="/zq81<script>")
    assert refused.value.error["code"] == "not_found.namespace"
    assert_no_echo(refused.value.error, "connect")


async def test_no_http_error_echoes_the_url(tkr_host, tkr_token):
    admin = {"Authorization": f"Bearer {tkr_token('root', roles=['admin'])}"}
    user = {"Authorization": f"Bearer {tkr_token('alice')}"}
    async with aiohttp.ClientSession() as http:
        for method, path, headers in [("GET", "/api/v1/sessions/zq81%3Cscript%3E/messages", user),
                                      ("GET", "/api/v1/sessions/zq81-session/messages?before_seq=zq81", user),
                                      ("DELETE", "/api/v1/bans/principal:zq81%3Cb%3E", admin),
                                      ("DELETE", "/api/v1/bans/ip:zq81", admin)]:
            async with http.request(method, f"{tkr_host.url}{path}", headers=headers) as response:
                body = await response.json(content_type=None)
                assert response.status in (400, 404), (path, response.status, body)
                assert_no_echo(body, f"{method} {path}")
