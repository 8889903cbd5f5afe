"""The default client manager: python-socketio's in-process AsyncManager."""

from __future__ import annotations

import socketio

from tkr_host._host import Host
from tkr_host.hookspecs import hookimpl


@hookimpl(trylast=True)
def client_manager(host: Host) -> socketio.AsyncManager:
    return socketio.AsyncManager()
