"""The ``poll`` type through a real host: open, vote, refusals, config, and disabling."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tkr_poll

from tkr_host.testing import RunningHost, TkrClient, connect_client, make_token, start_host

Room = Callable[[], Awaitable[tuple[TkrClient, TkrClient, str]]]
MakeClient = Callable[..., Awaitable[TkrClient]]

PLUGIN_DIR = Path(__file__).resolve().parents[1]
OPEN = {"action": "open", "poll_id": "lunch", "question": "Where do we eat?", "options": ["pizza", "sushi", "tacos"]}


def vote(option: int, poll_id: str = "lunch") -> dict[str, Any]:
    return {"action": "vote", "poll_id": poll_id, "option": option}


async def send(client: TkrClient, session_id: str, payload: Any, client_id: str | None = None) -> dict[str, Any]:
    """Send a poll message and return its ack."""
    data = {"session_id": session_id, "client_id": client_id or f"c-{uuid.uuid4().hex[:12]}", "type": "poll", "payload": payload}
    ack: dict[str, Any] = await client.call("message:send", data)
    return ack


def refused(ack: dict[str, Any], code: str) -> dict[str, Any]:
    assert ack["ok"] is False, ack
    error: dict[str, Any] = ack["error"]
    assert error["code"] == code, error
    assert error["hint"] and error["request_id"]
    return error


async def polls_in(client: TkrClient, session_id: str) -> list[dict[str, Any]]:
    return [m["payload"] for m in await client.history(session_id) if m["type"] == "poll"]


# --- opening -------------------------------------------------------------------


async def test_an_opened_poll_is_stored_and_delivered(room: Room) -> None:
    alice, bob, session_id = await room()
    ack = await send(alice, session_id, OPEN)
    assert ack["ok"] is True and ack["duplicate"] is False
    delivered = await bob.wait_for("message", lambda m: m["type"] == "poll")
    assert delivered["payload"] == OPEN
    assert delivered["sender"] == {"id": "alice", "kind": "user"} and delivered["seq"] == ack["message"]["seq"]
    assert await polls_in(alice, session_id) == [OPEN]


async def test_a_poll_id_is_opened_once_per_session(room: Room, tkr_client: MakeClient) -> None:
    alice, bob, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    refused(await send(bob, session_id, {**OPEN, "question": "Again?"}), "conflict.poll_exists")
    assert await polls_in(alice, session_id) == [OPEN]
    # Another session may use the same poll_id.
    other = await alice.create_session("other")
    assert (await send(alice, other, OPEN))["ok"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"poll_id": "p", "question": "q?", "options": ["a", "b"]},
        {**OPEN, "action": "close"},
        {**OPEN, "poll_id": ""},
        {**OPEN, "poll_id": "p" * 65},
        {**OPEN, "question": ""},
        {**OPEN, "question": "q" * 501},
        {**OPEN, "options": ["only one"]},
        {**OPEN, "options": [f"o{i}" for i in range(11)]},
        {**OPEN, "options": ["same", "same"]},
        {**OPEN, "options": ["", "b"]},
        {**OPEN, "options": ["a" * 201, "b"]},
        {**OPEN, "options": "a,b"},
        {**OPEN, "extra": 1},
        {**vote(0), "option": "0"},
        {**vote(0), "option": True},
        {**vote(0), "option": -1},
        {**vote(0), "option": 1.0},
        {"action": "vote", "poll_id": "lunch"},
    ],
)
async def test_malformed_payloads_are_validation_errors(room: Room, payload: dict[str, Any]) -> None:
    alice, _, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    refused(await send(alice, session_id, payload), "validation.payload")
    assert await polls_in(alice, session_id) == [OPEN]


# --- voting --------------------------------------------------------------------


async def test_members_vote_and_votes_are_delivered(room: Room) -> None:
    alice, bob, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    assert (await send(alice, session_id, vote(2)))["ok"]
    assert (await send(bob, session_id, vote(0)))["ok"]
    delivered = await bob.wait_for("message", lambda m: m["payload"].get("action") == "vote")
    assert delivered["payload"] == vote(2) and delivered["sender"]["id"] == "alice"
    assert await polls_in(alice, session_id) == [OPEN, vote(2), vote(0)]


async def test_an_option_out_of_range_is_a_validation_error(room: Room) -> None:
    alice, _, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    error = refused(await send(alice, session_id, vote(3)), "validation.payload")
    assert error["details"]["fields"][0]["field"] == "payload.vote.option"
    assert "0 to 2" in error["hint"]
    assert await polls_in(alice, session_id) == [OPEN]
    # The refusal is not a vote: a valid one still counts.
    assert (await send(alice, session_id, vote(2)))["ok"]


async def test_a_second_vote_is_refused_and_not_stored(room: Room) -> None:
    alice, bob, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    assert (await send(bob, session_id, vote(1)))["ok"]
    refused(await send(bob, session_id, vote(0)), "conflict.already_voted")
    refused(await send(bob, session_id, vote(1)), "conflict.already_voted")
    assert await polls_in(alice, session_id) == [OPEN, vote(1)]
    # One vote per poll: bob may vote in another one.
    assert (await send(alice, session_id, {**OPEN, "poll_id": "dinner"}))["ok"]
    assert (await send(bob, session_id, vote(0, "dinner")))["ok"]


async def test_resending_a_vote_with_its_client_id_is_a_duplicate_not_a_conflict(room: Room) -> None:
    alice, _, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    first = await send(alice, session_id, vote(1), client_id="v-1")
    again = await send(alice, session_id, vote(1), client_id="v-1")
    assert again["ok"] is True and again["duplicate"] is True and again["message"] == first["message"]


async def test_concurrent_votes_of_one_member_store_one(room: Room) -> None:
    alice, _, session_id = await room()
    assert (await send(alice, session_id, OPEN))["ok"]
    acks = await asyncio.gather(*(send(alice, session_id, vote(i % 3)) for i in range(8)))
    assert sum(ack["ok"] for ack in acks) == 1
    assert {ack["error"]["code"] for ack in acks if not ack["ok"]} <= {"conflict.already_voted", "conflict.poll_pending"}
    assert len(await polls_in(alice, session_id)) == 2
    refused(await send(alice, session_id, vote(0)), "conflict.already_voted")


async def test_a_vote_for_an_unknown_poll_is_refused(room: Room) -> None:
    alice, bob, session_id = await room()
    refused(await send(alice, session_id, vote(0)), "not_found.poll")
    # A poll of another session is unknown here too.
    other = await bob.create_session("elsewhere")
    assert (await send(bob, other, OPEN))["ok"]
    refused(await send(bob, session_id, vote(0)), "not_found.poll")
    assert await polls_in(alice, session_id) == []


async def test_the_store_is_the_truth_across_nodes(tkr_host: RunningHost, tkr_settings: dict[str, Any], tkr_plugins: list[Any]) -> None:
    """Two hosts on one database, as two nodes: each sees the polls and votes of the other."""
    other, stop_other = await start_host(tkr_settings, tkr_plugins)
    clients: list[TkrClient] = []

    async def client(running: RunningHost, principal_id: str) -> TkrClient:
        made = TkrClient(await connect_client(running.url, make_token(principal_id)), principal_id, "/chat")
        clients.append(made)
        return made

    try:
        alice_a, alice_b = await client(tkr_host, "alice"), await client(other, "alice")
        session_id = await alice_a.create_session()
        assert (await send(alice_a, session_id, OPEN))["ok"]
        assert (await send(alice_b, session_id, vote(1)))["ok"]
        refused(await send(alice_a, session_id, vote(2)), "conflict.already_voted")
        refused(await send(alice_b, session_id, OPEN), "conflict.poll_exists")
    finally:
        for made in clients:
            await made.close()
        await stop_other()


# --- configuration and installation ------------------------------------------------


@pytest.mark.tkr_settings({"plugins": {"poll": {"open_roles": ["moderator"]}}})
async def test_open_roles_limit_who_opens_polls_but_not_who_votes(tkr_client: MakeClient) -> None:
    mod, alice = await tkr_client("mod", roles=["moderator"]), await tkr_client("alice")
    session_id = await mod.create_session()
    await mod.ok("session:invite", {"session_id": session_id, "member": {"id": "alice", "kind": "user"}})
    error = refused(await send(alice, session_id, OPEN), "permission.poll_open")
    assert "moderator" in error["hint"]
    assert (await send(mod, session_id, OPEN))["ok"]
    assert (await send(alice, session_id, vote(0)))["ok"]


@pytest.mark.tkr_settings({"plugins": {"poll": {"open_role": ["moderator"]}}})
async def test_an_unknown_config_key_stops_start_up(tkr_settings: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"\[plugins\.poll\] open_role"):
        await start_host(tkr_settings)


@pytest.mark.tkr_settings({"host": {"disable_plugins": ["poll"]}})
async def test_a_disabled_plugin_offers_no_poll_type(tkr_client: MakeClient) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    error = refused(await send(alice, session_id, OPEN), "validation.unknown_type")
    assert "poll" not in error["details"]["types"]
    assert (await alice.send_text(session_id, "text still works"))["ok"]


async def test_the_host_lists_the_plugin(tkr_host: RunningHost) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/api/v1/plugins") as response:
        plugins = await response.json()
    poll = next(p for p in plugins if p["name"] == "poll")
    assert poll["distribution"] == "tkr-poll"
    # web_renderers is tkr-web's hook: the poll card of the web chat (docs/web.md); error_codes its own codes.
    assert set(poll["hooks"]) == {"config_model", "error_codes", "register_message_types", "web_renderers"}


async def test_the_readme_examples_run(room: Room) -> None:
    alice, _, session_id = await room()
    readme = (PLUGIN_DIR / "README.md").read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", readme, re.DOTALL)]
    sends = [example for example in examples if example.get("type") == "poll"]
    assert len(sends) >= 2
    for example in sends:
        ack = await alice.call("message:send", {**example, "session_id": session_id})
        assert ack["ok"] is True, (example, ack)


def test_the_plugin_imports_only_the_public_api() -> None:
    """Everything tkr_poll takes from the host comes from ``tkr_host`` itself."""
    package = Path(tkr_poll.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert sources
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name == "tkr_host" or not name.startswith("tkr_host."), f"{source.name}:{node.lineno} imports {name}"


# --- docs that cannot drift ------------------------------------------------------------

GUIDE = PLUGIN_DIR.parents[1] / "docs" / "writing-a-plugin.md"


def raised_codes() -> set[str]:
    """Every error code tkr_poll raises: the first argument of each ``HostError(...)``."""
    codes = set()
    for source in Path(tkr_poll.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "HostError":
                first = node.args[0]
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), f"{source.name}:{node.lineno}"
                codes.add(first.value)
    return codes


def test_every_error_code_is_documented() -> None:
    codes = raised_codes()
    assert {"not_found.poll", "conflict.already_voted", "validation.payload"} <= codes
    readme = (PLUGIN_DIR / "README.md").read_text(encoding="utf-8")
    assert {code for code in codes if f"| `{code}` |" not in readme} == set()
    if GUIDE.exists():
        guide = GUIDE.read_text(encoding="utf-8")
        assert {code for code in codes if f"`{code}`" not in guide} == set()


@pytest.mark.skipif(not GUIDE.exists(), reason="docs/writing-a-plugin.md is in the tkr-host repository, not in this distribution")
def test_the_guide_shows_the_real_pyproject() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert (PLUGIN_DIR / "pyproject.toml").read_text(encoding="utf-8") in blocks
