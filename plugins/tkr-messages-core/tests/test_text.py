"""The text type, and disabling the plugin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tkr_messages_core.text import TextPayload


def test_text_payload_bounds():
    assert TextPayload(text="x").format == "plain"
    assert TextPayload(text="x" * 32_768, format="markdown").format == "markdown"
    for bad in ({"text": ""}, {"text": "x" * 32_769}, {"text": 1}, {"text": "x", "format": "html"}, {"text": "x", "more": 1}):
        with pytest.raises(ValidationError):
            TextPayload.model_validate(bad)


async def test_text_round_trip(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.send_text(session_id, "**bold**")
    assert ack["ok"]
    assert (await alice.history(session_id))[0]["payload"] == {"text": "**bold**", "format": "plain"}


@pytest.mark.tkr_settings({"host": {"disable_plugins": ["messages_core"]}})
async def test_without_the_plugin_no_type_is_known(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.send_text(session_id, "hi")
    assert ack["error"]["code"] == "validation.unknown_type"
