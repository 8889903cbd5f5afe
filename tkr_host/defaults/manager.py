"""The default client manager: python-socketio's in-process AsyncManager, with a cheaper broadcast.

``AsyncManager.emit`` encodes a broadcast once, then creates one task per
recipient and waits for them all. Each task only puts the packet on the
recipient's Engine.IO queue (``AsyncSocket.send``: a ping-timeout check and an
unbounded ``Queue.put``, which never suspends), so with 50 members a message
cost 50 task creations, 50 scheduler turns and an ``asyncio.wait``. Here the
same packets are queued in a plain loop, recipient after recipient, in the
same order, within the manager's interface (``emit`` with the same
arguments). A recipient whose socket is closed or gone is skipped, as the
tasks' errors were ignored. An emit with a callback (a unique ack id per
recipient) keeps python-socketio's own path.

It also keeps each socket's rooms (:class:`tkr_host.room_index.RoomIndex`), so
that a disconnect walks the socket's own rooms, not every room of the namespace.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from tkr_host._host import Host
from tkr_host.hookspecs import hookimpl
from tkr_host.room_index import RoomIndex

log = logging.getLogger(__name__)


class BroadcastManager(RoomIndex, socketio.AsyncManager):  # type: ignore[misc]  # socketio has no stubs
    """``AsyncManager`` whose callback-less ``emit`` makes no task per recipient, with each sid's rooms indexed."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        # As AsyncManager.emit: a tuple is several arguments, anything else one.
        arguments = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        recipients = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skipped]
        if not recipients:
            return
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event, *arguments]).encode()
        # One packet object for all: Packet.encode caches its text, so it is encoded once.
        packets = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in (encoded if isinstance(encoded, list) else [encoded])]
        for eio_sid in recipients:
            for eio_pkt in packets:
                try:
                    await self.server._send_eio_packet(eio_sid, eio_pkt)
                except Exception as exc:  # a socket closed under us; the others still get it
                    log.debug("emit of %s to %s skipped: %s", event, eio_sid, exc)
                    break


@hookimpl(trylast=True)
def client_manager(host: Host) -> socketio.AsyncManager:
    return BroadcastManager()
