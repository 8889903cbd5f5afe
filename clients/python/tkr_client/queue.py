"""The offline queue: every send waits here until the host has acked it.

Each message gets its ``client_id`` when it is queued, so sending it again
after a lost ack or a restart is a harmless duplicate on the host. The queue
is bounded by entries and bytes; a full queue refuses a send at once with
:class:`~tkr_client.errors.QueueFullError` and never drops one silently.

:class:`MemoryQueue` lives and dies with the process. :class:`SqliteQueue`
keeps the entries in an SQLite file (WAL, committed at each change), so a
process that is killed and started again sends what it had queued, in order,
with the same ``client_id``\\ s.
"""

from __future__ import annotations

import json
import sqlite3
import threading
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

    def remove(self, client_id: str) -> None:
        """Forget an acked (or refused) entry; removing one that is gone is harmless."""
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
        size = entry.size
        self._check_room(entry, size)
        self._entries[entry.client_id] = (entry, size)
        self._bytes += size

    def entries(self) -> list[Outgoing]:
        return [entry for entry, _ in self._entries.values()]

    def remove(self, client_id: str) -> None:
        found = self._entries.pop(client_id, None)
        if found is not None:
            self._bytes -= found[1]

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
        # process killed right after sees it on its next start. A kill (not a
        # power cut) loses nothing with WAL and synchronous=NORMAL.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (position INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT UNIQUE NOT NULL, "
                "body TEXT NOT NULL, size INTEGER NOT NULL)"
            )
            count, total = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        self._count, self._bytes = int(count), int(total)

    def put(self, entry: Outgoing) -> None:
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
