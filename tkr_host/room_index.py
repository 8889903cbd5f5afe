"""Each socket's rooms, kept beside python-socketio's rooms, so that a disconnect costs its own rooms.

python-socketio's ``BaseManager.basic_disconnect`` finds the rooms of the
socket that leaves by walking every room of the namespace
(``self.rooms[namespace].copy().items()``), so closing N sockets at once costs
N × (rooms in the namespace): with two rooms per /chat socket (its sid's and its
principal's), 10,000 sockets closing together made new connects wait more than
15 s (docs/performance.md, "Closing 10,000 sockets at once").

:class:`RoomIndex` is a mixin for any python-socketio manager (the host's
default and tkr-redis's ``AsyncRedisManager`` alike: both end in
``BaseManager``'s ``basic_*`` methods, which every room change goes through).
It keeps ``namespace → sid → rooms``, written by ``basic_enter_room`` and
``basic_leave_room`` after python-socketio's own change has succeeded, and
``basic_disconnect`` reads it instead of walking the namespace. The rooms
themselves (``self.rooms``, the bidicts) are python-socketio's, unchanged:
``get_participants``, ``emit`` and ``basic_close_room`` (which leaves room by
room, through ``basic_leave_room``) see exactly what they saw before.

What ``basic_disconnect`` does after leaving the rooms (forgetting the sid's
callbacks, its pending connect and disconnect) is python-socketio 5.18's, written
again here since the method is one piece; the transport's version check
(``tkr_host._versions.check_versions``) bounds the versions it was read in.
"""

from __future__ import annotations

from typing import Any


class RoomIndex:
    """Mixin, first in the bases: ``class M(RoomIndex, socketio.AsyncManager)``."""

    #: ``namespace → sid → rooms`` (a dict for its order: the order they were entered).
    _sid_rooms: dict[str, dict[str, dict[Any, None]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sid_rooms = {}

    def rooms_of(self, sid: str, namespace: str) -> list[Any]:
        """The rooms ``sid`` is in, in this node, its sid room and the namespace's ``None`` room included."""
        return list(self._sid_rooms.get(namespace, {}).get(sid, ()))

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        # First python-socketio's change: it refuses (ValueError, a duplicate
        # eio_sid in the None room) before anything is written, and then nothing is indexed.
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._sid_rooms.setdefault(namespace, {}).setdefault(sid, {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        sids = self._sid_rooms.get(namespace)
        if sids is None:
            return
        rooms = sids.get(sid)
        if rooms is None:
            return
        rooms.pop(room, None)
        if not rooms:
            del sids[sid]
            if not sids:
                del self._sid_rooms[namespace]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        manager: Any = self  # python-socketio's attributes, untyped
        if namespace not in manager.rooms:
            return
        for room in self.rooms_of(sid, namespace):
            self.basic_leave_room(sid, namespace, room)
        # The rest as BaseManager.basic_disconnect (python-socketio 5.18).
        manager.callbacks.pop(sid, None)
        for pending in (manager.pending_connect, manager.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]
