"""The baseline: a bare python-socketio server speaking just enough of ``/chat``.

It answers the events the benchmark sends with the same ack shapes as the host,
and does the least that makes them mean anything: a room per session, an
in-memory ``seq`` counter per room, and ``message`` emitted to the room minus
the sender. No auth, no validation, no store, no plugins, no ordering lock.

It runs on the same Hypercorn as ``tkr-host serve`` (``hypercorn.asyncio.serve``
in this process, one worker), configured from the top-level keys of the same
TOML file, so the two differ only in the application::

    python bench/bare_server.py --config FILE

``GET /healthz`` answers 200 so the benchmark can wait for it like the host.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tomllib
import uuid
from datetime import UTC, datetime
from typing import Any

import socketio
from hypercorn.asyncio import serve
from hypercorn.config import Config

NAMESPACE = "/chat"

# The host's Engine.IO settings (its defaults), so both sides ping and buffer alike.
sio = socketio.AsyncServer(
    async_mode="asgi",
    ping_interval=25.0,
    ping_timeout=20.0,
    max_http_buffer_size=1_048_576,
    logger=False,
    engineio_logger=False,
)
#: Last seq handed out, per room.
last_seq: dict[str, int] = {}


def now() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def session(room: str) -> dict[str, Any]:
    return {"id": room, "title": "", "created_by": "", "created_at": "", "members": [], "last_seq": last_seq.get(room, 0)}


async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
    return True


async def create(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    room = str(uuid.uuid4())
    await sio.enter_room(sid, room, namespace=NAMESPACE)
    return {"ok": True, "session": session(room)}


async def invite(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "session": session(str(data["session_id"]))}


async def join(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    room = str(data["session_id"])
    await sio.enter_room(sid, room, namespace=NAMESPACE)
    return {"ok": True, "session": session(room), "messages": [], "truncated": False, "streams": []}


async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    room = str(data["session_id"])
    seq = last_seq[room] = last_seq.get(room, 0) + 1
    message = {
        "id": str(uuid.uuid4()),
        "session_id": room,
        "seq": seq,
        "type": data.get("type", "text"),
        "sender": {"id": sid, "kind": "user"},
        "to": None,
        "in_reply_to": None,
        "client_id": data.get("client_id"),
        "payload": data.get("payload", {}),
        "ts": now(),
        "status": "complete",
    }
    await sio.emit("message", message, room=room, skip_sid=sid, namespace=NAMESPACE)
    return {"ok": True, "message": {"id": message["id"], "seq": seq, "ts": message["ts"]}, "duplicate": False}


for event, handler in {"connect": connect, "session:create": create, "session:invite": invite, "session:join": join,
                       "message:send": send}.items():
    sio.on(event, handler, namespace=NAMESPACE)


async def health(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Everything that is not ``/socket.io/``: 200 on ``/healthz``, 404 otherwise."""
    status = 200 if scope.get("path") == "/healthz" else 404
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status": "ok"}' if status == 200 else b"{}"})


# on_startup set: ASGIApp answers lifespan itself and `health` only sees HTTP.
app = socketio.ASGIApp(sio, other_asgi_app=health, socketio_path="socket.io", on_startup=lambda: None)


def hypercorn_config(path: str) -> Config:
    """Hypercorn's settings from the top-level keys of a tkr-host config file."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    return Config.from_mapping({key: value for key, value in data.items() if key not in ("host", "plugins")})


async def main(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, help="a tkr-host TOML config; only its Hypercorn keys are read")
    asyncio.run(main(hypercorn_config(parser.parse_args().config)))
