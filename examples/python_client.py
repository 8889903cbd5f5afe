"""Connect to /chat, create a session, send one text message, print the ack.

TKR_URL=http://127.0.0.1:8000 TKR_TOKEN=<token> .venv/bin/python examples/python_client.py
"""

import asyncio
import json
import os
import uuid

import socketio


async def main() -> None:
    url = os.environ.get("TKR_URL", "http://127.0.0.1:8000")
    sio = socketio.AsyncClient()
    # The token goes in the Socket.IO auth payload, never in the URL.
    await sio.connect(url, namespaces=["/chat"], auth={"token": os.environ["TKR_TOKEN"]})
    try:
        created = await sio.call("session:create", {"title": "Hello"}, namespace="/chat")
        if not created["ok"]:
            raise SystemExit(f"session:create failed: {created['error']['code']}")
        ack = await sio.call(
            "message:send",
            {
                "session_id": created["session"]["id"],
                "client_id": f"c-{uuid.uuid4().hex[:12]}",  # resending with the same id is safe
                "type": "text",
                "payload": {"text": "Hello from Python"},
            },
            namespace="/chat",
        )
        print(json.dumps(ack))  # {"ok": true, "message": {"id": ..., "seq": 1, "ts": ...}, "duplicate": false}
    finally:
        await sio.disconnect()


asyncio.run(main())
