"""Fixtures of tkr-poll's tests.

The host fixtures (``tkr_host``, ``tkr_client``, ``tkr_settings``…) come from
tkr-host's pytest plugin, loaded through its ``pytest11`` entry point. With
``--import-mode=importlib`` tests cannot import this module, so helpers are
fixtures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tkr_host.testing import TkrClient

MakeClient = Callable[..., Awaitable[TkrClient]]


@pytest.fixture
def room(tkr_client: MakeClient) -> Callable[[], Awaitable[tuple[TkrClient, TkrClient, str]]]:
    """``await room()``: alice and bob, both members of a new session that both have joined."""

    async def make() -> tuple[TkrClient, TkrClient, str]:
        alice, bob = await tkr_client("alice"), await tkr_client("bob")
        session_id = await alice.create_session("polls")
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
        await alice.join(session_id)
        await bob.join(session_id)
        return alice, bob, session_id

    return make

