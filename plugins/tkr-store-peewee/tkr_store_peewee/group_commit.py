"""Group commit: the appends that wait together are committed together.

Every message sent is one append, and an append used to be one transaction:
on SQLite a hop to the connection's thread, ``BEGIN IMMEDIATE``, the
statements, ``COMMIT`` (a WAL write) and a hop back, one writer at a time; on
PostgreSQL one round trip and one commit each. Throughput was one commit after
another. Here an append joins a queue, and one writer task takes every append
waiting, commits them in one transaction and answers each. While it commits,
the next batch gathers. A lone append is committed at once, as before.

What stays true:

- **acks after the commit**: :meth:`GroupCommit.submit` returns only once the
  batch's transaction is committed, and raises when it is not; so the host
  acks nothing that is not stored;
- **seq order per session**: the writer bumps each session's counter in the
  order its appends arrived (the host holds the session's lock across an
  append and its emit, so one session has at most one append waiting here
  per node; sessions of different senders share the batch);
- **one message refused, not the batch**: the statements roll back a refused
  message (a repeated ``client_id``) to its savepoint, and that message's
  outcome is the error, raised to its caller alone.

The writer task lives only while there are appends; a caller cancelled while
it waits leaves its append to the writer, as a cancelled single append used
to be left to the database: it is stored or not, and a resend with the same
``client_id`` finds out which.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tkr_store_peewee")

#: Appends in one transaction at most: a batch stays a short transaction,
#: and the writer's memory is bounded whatever the queue holds.
MAX_BATCH = 256

#: What the batch function answers for each append: its seq, None (no such
#: session), or the error that refused it.
Outcome = int | BaseException | None


@dataclass
class Append:
    """One message to append: the values of ``MESSAGE_COLUMNS``, its agents'
    delivery rows, and the rows it carries (SQL text and parameters)."""

    values: tuple[Any, ...]
    agents: tuple[str, ...]
    writes: Sequence[tuple[str, tuple[Any, ...]]]
    done: asyncio.Future[int | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    """The queue of appends and its one writer."""

    def __init__(self, commit_batch: Callable[[list[Append]], Awaitable[list[Outcome]]]) -> None:
        #: Commits a batch in one transaction; raises when the transaction failed.
        self._commit_batch = commit_batch
        self._waiting: list[Append] = []
        self._writer: asyncio.Task[None] | None = None
        #: Batches committed and appends in them, for the benchmark's notes.
        self.batches = 0
        self.appends = 0

    async def submit(self, item: Append) -> int | None:
        """Queue ``item`` and wait until its batch is committed; its seq, or None."""
        self._waiting.append(item)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all(), name="tkr-store-group-commit")
        return await item.done

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[Append]) -> None:
        try:
            outcomes = await self._commit_batch(batch)
        except Exception as exc:
            # Nothing of the batch is stored: every caller gets the error.
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        except BaseException:
            # The writer itself is cancelled (the loop is closing): so are its callers.
            for item in batch + self._waiting:
                item.done.cancel()
            raise
        self.batches += 1
        self.appends += len(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.done.done():
                continue  # its caller was cancelled; the message is stored all the same
            if isinstance(outcome, BaseException):
                item.done.set_exception(outcome)
            else:
                item.done.set_result(outcome)

    async def drain(self) -> None:
        """Wait for the appends already queued (before the pool closes)."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait([writer])
