"""Plugin error codes of protocol.md's generated table that had no test (issue 13, item 5):
tkr-guard's ``validation.target`` and ``internal.not_started``, tkr-poll's ``conflict.poll_pending``.

Expected values are quoted from docs/protocol.md next to their assertions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tkr_host.testing import installed_plugins, make_token

ADMIN = make_token("root", roles=["admin"])


async def delete_ban(url: str, target: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.delete(f"{url}/api/v1/bans/{target}",
                                                            headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        return response.status, await response.json()


@pytest.mark.skipif("guard" not in installed_plugins(), reason="tkr-guard is not installed")
async def test_lifting_a_ban_of_a_target_that_cannot_be_read_is_validation_target(tkr_host):
    # protocol.md: "`validation.target` | `tkr-guard` | `DELETE /api/v1/bans/<target>` with a
    # target that cannot be read"; HTTP: validation is 400.
    status, body = await delete_ban(tkr_host.url, "ip:999.1.2.3")
    assert status == 400 and body["error"]["code"] == "validation.target" and body["error"]["hint"]
    # A target that can be read and is not banned is the other answer, not this one.
    status, body = await delete_ban(tkr_host.url, "ip:192.0.2.1")
    assert status == 404 and body["error"]["code"] == "not_found.ban"


@pytest.mark.skipif("guard" not in installed_plugins(), reason="tkr-guard is not installed")
async def test_the_bans_api_before_the_guard_started_is_internal_not_started(tkr_host):
    # protocol.md: "`internal.not_started` | `tkr-guard` | `/api/v1/bans` before the guard
    # started". The guard puts itself in the host's extensions when it starts; it is taken
    # out again, as before that start.
    guard = tkr_host.host.extensions.pop("guard")
    try:
        status, body = await delete_ban(tkr_host.url, "ip:192.0.2.1")
    finally:
        tkr_host.host.extensions["guard"] = guard
    assert status == 500 and body["error"]["code"] == "internal.not_started", body
    status, body = await delete_ban(tkr_host.url, "ip:192.0.2.1")
    assert body["error"]["code"] == "not_found.ban"


def database_of(tkr_store_url: str) -> Path:
    return Path(tkr_store_url.removeprefix("sqlite:///"))


async def send_poll(client: Any, session_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    data = {"session_id": session_id, "client_id": f"c-{uuid.uuid4().hex[:12]}", "type": "poll", "payload": payload}
    ack: dict[str, Any] = await client.call("message:send", data)
    return ack


@pytest.mark.skipif("poll" not in installed_plugins(), reason="tkr-poll is not installed")
async def test_a_second_vote_while_the_first_is_being_stored_is_conflict_poll_pending(room, tkr_store_url):
    alice, _, session_id = await room()
    assert (await send_poll(alice, session_id, {"action": "open", "poll_id": "lunch", "question": "Where?",
                                                "options": ["pizza", "sushi"]}))["ok"]
    # Another connection holds SQLite's write lock (readers still read), so the vote that
    # gets through the plugin's checks first waits in the store, undecided.
    locker = sqlite3.connect(database_of(tkr_store_url), isolation_level=None, timeout=10)
    try:
        locker.execute("BEGIN IMMEDIATE")
        votes = [asyncio.create_task(send_poll(alice, session_id, {"action": "vote", "poll_id": "lunch", "option": i}))
                 for i in (0, 1)]
        done, _ = await asyncio.wait(votes, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert done, "neither vote was answered while the first was being stored"
    # protocol.md: "`conflict.poll_pending` | `tkr-poll` | a second vote or open by the same
    # member while the first is being stored (`retry_after`)".
    pending = done.pop().result()
    assert pending["ok"] is False and pending["error"]["code"] == "conflict.poll_pending", pending
    assert pending["error"]["retry_after"] > 0
    acks = await asyncio.gather(*votes)
    assert sorted(ack["ok"] for ack in acks) == [False, True]
