"""A client process for test_kills.py: ``queue_sender.py send|drain QUEUE_PATH SESSION_ID N``.

``send`` queues N messages in the file queue before connecting, says ``queued``,
then connects and sends them (the test kills it on the way). ``drain`` opens the
same file, says ``resumed <count>``, and exits once the queue is empty.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tkr_client import Backoff, ChatClient


async def main(mode: str, queue_path: str, session_id: str, count: int) -> None:
    client = ChatClient(os.environ["TKR_URL"], os.environ["TKR_TOKEN"], queue_path=queue_path, backoff=Backoff(base=0.1, cap=1.0))
    if mode == "send":
        sends = [asyncio.ensure_future(client.send_text(session_id, f"m{i:03d}")) for i in range(count)]
        await asyncio.sleep(0)  # each send is in the file once its task has started
        assert client.queued == count
        print("queued", flush=True)
        await client.connect()
        await asyncio.gather(*sends)
    else:
        print(f"resumed {client.queued}", flush=True)
        done = asyncio.Event()
        client.on("state", lambda state: done.set() if state.queued == 0 else None)
        await client.connect()
        if client.queued:
            await asyncio.wait_for(done.wait(), 60)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
