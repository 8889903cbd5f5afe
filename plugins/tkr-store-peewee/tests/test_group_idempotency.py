"""A batch of plain messages (no agents, no rows of their own) has no savepoint per
message: a refused one gives its seq back by hand. Seqs stay gapless and a repeated
client_id is answered with the stored message (docs/protocol.md), on both databases."""

from __future__ import annotations

import asyncio

from tkr_store_peewee import PeeweeStore

from tkr_host import Member, MessageDraft

ALICE = Member(id="alice", kind="user")


def draft(session_id: str, client_id: str, text: str | None = None) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=ALICE, payload={"text": text or client_id}, client_id=client_id)


async def test_a_repeated_client_id_in_one_batch_takes_no_seq(store: PeeweeStore) -> None:
    session_id = (await store.create_session("room", ALICE, [], {})).id
    names = ["c-0", "c-1", "c-1", "c-2", "c-1", "c-3"]
    results = await asyncio.gather(*(store.append_message(draft(session_id, name), []) for name in names))

    assert [r.duplicate for r in results] == [False, False, True, False, True, False]
    assert results[2].message == results[4].message == results[1].message
    stored = await store.messages_after(session_id, 0, 100)
    assert [(m.seq, m.client_id) for m in stored] == [(1, "c-0"), (2, "c-1"), (3, "c-2"), (4, "c-3")]
    # The session's counter agrees: the next message is seq 5.
    assert (await store.append_message(draft(session_id, "c-4"), [])).message.seq == 5


async def test_a_text_the_database_cannot_hold_takes_no_seq(store: PeeweeStore) -> None:
    session_id = (await store.create_session("room", ALICE, [], {})).id
    # A client_id with a lone surrogate cannot be encoded as UTF-8: the driver refuses that message alone.
    names = [f"c-{n}" if n != 2 else "c-\ud800" for n in range(5)]
    sends = [store.append_message(draft(session_id, name, "text"), []) for name in names]
    results = await asyncio.gather(*sends, return_exceptions=True)

    assert [isinstance(r, BaseException) for r in results] == [False, False, True, False, False]
    stored = await store.messages_after(session_id, 0, 100)
    assert [(m.seq, m.client_id) for m in stored] == [(1, "c-0"), (2, "c-1"), (3, "c-3"), (4, "c-4")]
