"""The offline queue: every send waits here until the host has acked it.

Each message gets its ``client_id`` when it is queued, so sending it again
after a lost ack or a restart is a harmless duplicate on the host. The queue
is bounded by entries and bytes; a full queue refuses a send at once with
:class:`~tkr_client.errors.QueueFullError` and never drops one silently.

:class:`MemoryQueue` lives and dies with the process. :class:`SqliteQueue`
keeps the entries in an SQLite file (WAL, committed at each change), so a
process that is killed and started again sends what it had queued, in order,
with the same ``client_id``\\ s.

:class:`HandledIds` is the agent's other piece of local state: the ids of the
messages it has handled. Delivery to an agent is at-least-once, so a message
whose ack was lost comes again; the agent drops an id it remembers (the newest
``limit`` in memory, and with a ``state_path`` in an SQLite file, so a
restarted agent does not handle a message twice either).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkr_client.errors import client_error

DEFAULT_MAX_ENTRIES = 1000
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Outgoing:
    """One queued ``message:send``."""

    client_id: str
    session_id: str
    type: str
    payload: dict[str, Any]
    to: str | None = None
    in_reply_to: str | None = None

    def request(self) -> dict[str, Any]:
        """The ``message:send`` payload."""
        body: dict[str, Any] = {"session_id": self.session_id, "client_id": self.client_id, "type": self.type, "payload": self.payload}
        if self.to is not None:
            body["to"] = self.to
        if self.in_reply_to is not None:
            body["in_reply_to"] = self.in_reply_to
        return body

    def encode(self) -> str:
        return json.dumps(self.request(), separators=(",", ":"), ensure_ascii=False)

    @property
    def size(self) -> int:
        """Bytes this entry counts against the queue's limit (its UTF-8 JSON)."""
        return len(self.encode().encode())

    @classmethod
    def decode(cls, text: str) -> Outgoing:
        body = json.loads(text)
        return cls(client_id=body["client_id"], session_id=body["session_id"], type=body["type"], payload=body["payload"],
                   to=body.get("to"), in_reply_to=body.get("in_reply_to"))


class OfflineQueue:
    """The queue's contract and its bounds; subclasses keep the entries."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the queue needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def _check_room(self, entry: Outgoing, size: int) -> None:
        if len(self) + 1 > self.max_entries:
            raise client_error("queue_full", f"The offline queue holds its limit of {self.max_entries} messages.",
                               "Wait until queued messages are sent (see `queued`), or raise max_queue_entries.")
        if self.bytes + size > self.max_bytes:
            raise client_error("queue_full", f"The offline queue holds {self.bytes} of its {self.max_bytes} bytes; "
                               f"this message needs {size}.", "Wait until queued messages are sent, or raise max_queue_bytes.")

    def put(self, entry: Outgoing) -> None:
        """Append ``entry``; raise ``QueueFullError`` (and queue nothing) when it does not fit."""
        raise NotImplementedError

    def entries(self) -> list[Outgoing]:
        """Every entry, oldest first."""
        raise NotImplementedError

    def head(self) -> Outgoing | None:
        """The oldest entry (the next to send), or None when empty."""
        raise NotImplementedError

    def remove(self, client_id: str) -> None:
        """Forget an acked (or refused) entry; removing one that is gone is harmless."""
        raise NotImplementedError

    def __contains__(self, client_id: object) -> bool:
        """Whether an entry with this ``client_id`` is queued."""
        raise NotImplementedError

    @property
    def bytes(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the queue's resources."""


class MemoryQueue(OfflineQueue):
    """In memory: lost when the process ends."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_entries, max_bytes)
        self._entries: OrderedDict[str, tuple[Outgoing, int]] = OrderedDict()
        self._bytes = 0

    def put(self, entry: Outgoing) -> None:
        if entry.client_id in self._entries:
            return  # the same send: queued (and counted) once
        size = entry.size
        self._check_room(entry, size)
        self._entries[entry.client_id] = (entry, size)
        self._bytes += size

    def entries(self) -> list[Outgoing]:
        return [entry for entry, _ in self._entries.values()]

    def head(self) -> Outgoing | None:
        for entry, _ in self._entries.values():
            return entry
        return None

    def remove(self, client_id: str) -> None:
        found = self._entries.pop(client_id, None)
        if found is not None:
            self._bytes -= found[1]

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._entries

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


class SqliteQueue(OfflineQueue):
    """In an SQLite file: what was queued survives the process."""

    def __init__(self, path: str | Path, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_entries, max_bytes)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each put and remove is on disk when the call returns, so a
        # process killed right after sees it on its next start. synchronous=FULL
        # syncs the WAL at every commit, so a power cut cannot lose a send that
        # put() returned for either (NORMAL would survive a kill, not that).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (position INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT UNIQUE NOT NULL, "
                "body TEXT NOT NULL, size INTEGER NOT NULL)"
            )
            count, total = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        self._count, self._bytes = int(count), int(total)

    def put(self, entry: Outgoing) -> None:
        if entry.client_id in self:
            return  # the same send: queued (and counted) once
        body = entry.encode()
        size = len(body.encode())
        self._check_room(entry, size)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO outbox (client_id, body, size) VALUES (?, ?, ?)", (entry.client_id, body, size))
            if self._db.execute("SELECT changes()").fetchone()[0]:
                self._count += 1
                self._bytes += size

    def entries(self) -> list[Outgoing]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM outbox ORDER BY position").fetchall()
        return [Outgoing.decode(row[0]) for row in rows]

    def head(self) -> Outgoing | None:
        # One row, one decode: the drain loop asks before every send.
        with self._lock:
            row = self._db.execute("SELECT body FROM outbox ORDER BY position LIMIT 1").fetchone()
        return Outgoing.decode(row[0]) if row is not None else None

    def __contains__(self, client_id: object) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox WHERE client_id = ?", (client_id,)).fetchone() is not None

    def remove(self, client_id: str) -> None:
        with self._lock:
            row = self._db.execute("DELETE FROM outbox WHERE client_id = ? RETURNING size", (client_id,)).fetchone()
        if row is not None:
            self._count -= 1
            self._bytes -= int(row[0])

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_queue(path: str | Path | None, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> OfflineQueue:
    """A file queue at ``path``, or an in-memory one."""
    if path is None:
        return MemoryQueue(max_entries, max_bytes)
    return SqliteQueue(path, max_entries, max_bytes)


DEFAULT_HANDLED_LIMIT = 10_000


class HandledIds:
    """A bounded set of handled message ids, optionally kept on disk."""

    def __init__(self, state_path: str | Path | None = None, limit: int = DEFAULT_HANDLED_LIMIT) -> None:
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
