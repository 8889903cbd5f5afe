"""The ids of messages an agent has handled, so a redelivery is dropped.

Delivery to an agent is at-least-once: a message the host sent before the
agent's ack arrived comes again after a reconnect. The agent remembers the ids
it handled (the newest ``limit``, in memory), and with a ``state_path`` in an
SQLite file, so a restarted agent does not handle a message twice either.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from pathlib import Path

DEFAULT_LIMIT = 10_000


class HandledIds:
    """A bounded set of handled message ids, optionally kept on disk."""

    def __init__(self, state_path: str | Path | None = None, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        if state_path is not None:
            path = Path(state_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS handled (message_id TEXT PRIMARY KEY, at REAL NOT NULL)")
            for (message_id,) in self._db.execute("SELECT message_id FROM handled ORDER BY at DESC LIMIT ?", (limit,)).fetchall()[::-1]:
                self._ids[message_id] = None

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        evicted = []
        while len(self._ids) > self.limit:
            evicted.append(self._ids.popitem(last=False)[0])
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO handled (message_id, at) VALUES (?, ?)", (message_id, time.time()))
            if evicted:
                self._db.executemany("DELETE FROM handled WHERE message_id = ?", [(old,) for old in evicted])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
