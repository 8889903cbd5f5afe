"""The offline queue's own rules (docs/client.md "The offline queue"): order, the
same client_ids after a reopen, and bounds by entries and bytes that hold across it."""

from __future__ import annotations

import pytest
from tkr_client import MemoryQueue, QueueFullError, SqliteQueue
from tkr_client.queue import Outgoing


def entry(i: int, text: str = "x") -> Outgoing:
    return Outgoing(client_id=f"c-{i}", session_id="s", type="text", payload={"text": text}, to="echo" if i % 2 else None)


def test_a_file_queue_keeps_order_and_client_ids_across_a_reopen(tmp_path):
    path = tmp_path / "outbox.db"
    queue = SqliteQueue(path)
    for i in range(5):
        queue.put(entry(i, f"m{i}"))
    queue.remove("c-1")
    size = queue.bytes
    queue.close()
    again = SqliteQueue(path)
    assert [e.client_id for e in again.entries()] == ["c-0", "c-2", "c-3", "c-4"]
    assert [e.payload["text"] for e in again.entries()] == ["m0", "m2", "m3", "m4"]
    assert again.entries()[1].to is None and again.entries()[2].to == "echo"
    assert len(again) == 4 and again.bytes == size
    again.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_full_queue_refuses_and_keeps_what_it_has(tmp_path, kind):
    def make(**bounds):
        return MemoryQueue(**bounds) if kind == "memory" else SqliteQueue(tmp_path / f"q-{len(list(tmp_path.iterdir()))}.db", **bounds)

    by_count = make(max_entries=2)
    by_count.put(entry(0))
    by_count.put(entry(1))
    with pytest.raises(QueueFullError) as full:
        by_count.put(entry(2))
    assert full.value.code == "client.queue_full" and full.value.hint
    assert [e.client_id for e in by_count.entries()] == ["c-0", "c-1"]
    by_count.remove("c-0")
    by_count.put(entry(2))  # room again once one is acked
    one = entry(0, "a" * 50)
    by_bytes = make(max_bytes=one.size * 2)
    by_bytes.put(one)
    by_bytes.put(entry(2, "a" * 50))
    with pytest.raises(QueueFullError):
        by_bytes.put(entry(4, "a"))
    assert len(by_bytes) == 2
    by_count.close()
    by_bytes.close()


def test_bounds_hold_across_a_reopen(tmp_path):
    path = tmp_path / "outbox.db"
    queue = SqliteQueue(path, max_entries=3)
    for i in range(3):
        queue.put(entry(i))
    queue.close()
    again = SqliteQueue(path, max_entries=3)
    with pytest.raises(QueueFullError):
        again.put(entry(9))
    again.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_reused_client_id_is_one_queued_send_and_both_callers_get_its_ack(chat, tmp_path, kind):
    import asyncio

    # Room for about three queued sends: a reused id that counted its bytes twice
    # and gave back only once would fill it within a few rounds.
    options = {"queue_path": tmp_path / "outbox.db"} if kind == "file" else {}
    alice = await chat("alice", max_queue_bytes=400, **options)
    session = await alice.create_session()
    for round in range(6):
        client_id = f"c-reused-{round}"
        first, second = await asyncio.wait_for(asyncio.gather(
            alice.send(session["id"], "text", {"text": f"once {round}"}, client_id=client_id),
            alice.send(session["id"], "text", {"text": f"once {round}"}, client_id=client_id)), 5)
        assert first == second and first["seq"] == round + 1
        assert alice.queued == 0
    assert [m["seq"] for m in await alice.history(session["id"])] == list(range(1, 7))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_putting_a_queued_client_id_again_counts_it_once(tmp_path, kind):
    queue = MemoryQueue() if kind == "memory" else SqliteQueue(tmp_path / "outbox.db")
    queue.put(entry(0))
    once = queue.bytes
    queue.put(entry(0))
    assert len(queue) == 1 and queue.bytes == once and "c-0" in queue
    queue.remove("c-0")
    assert len(queue) == 0 and queue.bytes == 0 and "c-0" not in queue
    queue.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_head_is_the_oldest_entry_without_reading_the_rest(tmp_path, kind):
    queue = MemoryQueue() if kind == "memory" else SqliteQueue(tmp_path / "outbox.db")
    assert queue.head() is None
    for i in range(3):
        queue.put(entry(i, f"m{i}"))
    head = queue.head()
    assert head is not None and head.client_id == "c-0" and head.payload == {"text": "m0"}
    queue.remove("c-0")
    assert queue.head().client_id == "c-1"
    if kind == "file":
        # A corrupt body after the head is not decoded: a drain step reads one row.
        queue._db.execute("UPDATE outbox SET body = 'not json' WHERE client_id = 'c-2'")
        assert queue.head().client_id == "c-1"
    queue.close()


def test_the_file_queue_syncs_every_commit(tmp_path):
    # docs/client.md: a queued send survives a power cut, which WAL gives only with
    # synchronous=FULL (2); NORMAL (1) may lose the last commits.
    queue = SqliteQueue(tmp_path / "outbox.db")
    assert queue._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    queue.close()
