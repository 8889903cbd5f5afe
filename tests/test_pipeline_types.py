"""A third-party message type's ``ctx.checks`` and ``ctx.after_store``, each on its own.

docs/host-api.md, ``MessageContext``: ``checks`` "run under the session's lock just before
the append" and ``after_store`` "run under it once the message is stored"; a check may refuse
with ``HostError`` (``MessageType``). The built-in ``task`` type uses both at once, so these two
types take one each: a type with checks only, and one with side effects only. A side effect
that raises "is logged and undoes nothing", and "`ctx.checks` never see a resend" (the same
page). docs/protocol.md, Message: the
payload is stored "as its type's model returns it in JSON form".
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from tkr_host import HostError, hookimpl
from tkr_host.testing import eventually
from tkr_host.types import Message, MessageDraft


class Probe(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    refuse: bool = False


class Checked:
    """A type whose only extra is a check: it refuses a payload with ``refuse: true``."""

    name = "probe.checked"
    payload_model = Probe

    def __init__(self) -> None:
        self.checked: list[str | None] = []

    async def handle(self, ctx: Any, draft: MessageDraft) -> None:
        async def check(draft: MessageDraft) -> None:
            self.checked.append(draft.client_id)
            if draft.payload["refuse"]:
                raise HostError("validation.payload", message="Refused by the probe's check.")

        ctx.checks.append(check)


class Effects:
    """A type whose only extra is a side effect: it keeps the id of every message stored."""

    name = "probe.effects"
    payload_model = Probe

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def handle(self, ctx: Any, draft: MessageDraft) -> None:
        async def side_effect(message: Message) -> None:
            self.stored.append(message.id)

        ctx.after_store.append(side_effect)


class Failing:
    """A type with two side effects, the first of which raises."""

    name = "probe.failing"
    payload_model = Probe

    def __init__(self) -> None:
        self.after_the_failure: list[str] = []

    async def handle(self, ctx: Any, draft: MessageDraft) -> None:
        async def fails(message: Message) -> None:
            raise RuntimeError("the probe's side effect failed")

        async def runs(message: Message) -> None:
            self.after_the_failure.append(message.id)

        ctx.after_store.extend([fails, runs])


class Ticket(BaseModel):
    """A lax model (as a third party may write one) with a field JSON has no type for."""

    ticket: uuid.UUID


class Ticketed:
    name = "probe.ticket"
    payload_model = Ticket

    async def handle(self, ctx: Any, draft: MessageDraft) -> None:
        pass


class ProbeTypes:
    __name__ = "probe-types"

    def __init__(self) -> None:
        self.checked, self.effects, self.failing = Checked(), Effects(), Failing()

    @hookimpl
    def register_message_types(self, host: Any) -> list[Any]:
        return [self.checked, self.effects, self.failing, Ticketed()]


@pytest.fixture
def probes() -> ProbeTypes:
    return ProbeTypes()


@pytest.fixture
def tkr_plugins(probes: ProbeTypes) -> list[Any]:
    return [probes]


def send(session_id: str, message_type: str, client_id: str, refuse: bool = False) -> dict[str, Any]:
    return {"session_id": session_id, "client_id": client_id, "type": message_type, "payload": {"refuse": refuse}}


async def test_a_type_with_checks_only_has_them_run(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    refused = await alice.call("message:send", send(session_id, "probe.checked", "c-1", refuse=True))
    assert refused["ok"] is False and refused["error"]["code"] == "validation.payload", refused
    accepted = await alice.call("message:send", send(session_id, "probe.checked", "c-2"))
    assert accepted["ok"] is True, accepted
    assert [m["id"] for m in await alice.history(session_id)] == [accepted["message"]["id"]]


async def test_a_type_with_side_effects_only_has_them_run_once_per_stored_message(tkr_client: Any, probes: ProbeTypes) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    first = await alice.call("message:send", send(session_id, "probe.effects", "c-1"))
    assert first["ok"] is True, first
    await eventually(lambda: first["message"]["id"] in probes.effects.stored, what="the side effect")
    again = await alice.call("message:send", send(session_id, "probe.effects", "c-1"))
    assert again["duplicate"] is True  # a duplicate: the side effects do not run (docs/host-api.md's stored once)
    sentinel = await alice.call("message:send", send(session_id, "probe.effects", "c-2"))
    await eventually(lambda: sentinel["message"]["id"] in probes.effects.stored, what="the sentinel's side effect")
    assert probes.effects.stored == [first["message"]["id"], sentinel["message"]["id"]]


async def test_a_side_effect_that_raises_undoes_nothing(tkr_client: Any, probes: ProbeTypes) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    await bob.join(session_id)
    ack = await alice.call("message:send", send(session_id, "probe.failing", "c-1"))
    assert ack["ok"] is True and ack["duplicate"] is False, ack
    assert probes.failing.after_the_failure == [ack["message"]["id"]]  # the next side effect ran
    await bob.wait_for("message", lambda m: m["id"] == ack["message"]["id"])
    assert [m["id"] for m in await alice.history(session_id)] == [ack["message"]["id"]]


async def test_a_payload_is_stored_in_its_models_json_form(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ticket = str(uuid.uuid4())
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "probe.ticket", "payload": {"ticket": ticket}})
    assert ack["ok"] is True, ack
    [stored] = await alice.history(session_id)
    assert stored["payload"] == {"ticket": ticket}


async def test_checks_never_see_a_resend(tkr_client: Any, probes: ProbeTypes) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    first = await alice.call("message:send", send(session_id, "probe.checked", "c-1"))
    assert first["ok"] is True, first
    # Resent as one that the check would refuse: a check that saw it would refuse it.
    again = await alice.call("message:send", send(session_id, "probe.checked", "c-1", refuse=True))
    assert again["ok"] is True and again["duplicate"] is True and again["message"] == first["message"], again
    assert probes.checked.checked == ["c-1"]
