"""The default client manager: python-socketio's in-process AsyncManager."""

from __future__ import annotations

import socketio

from tkr_host.hookspecs import hookimpl
from tkr_host.host import Host


@hookimpl(trylast=True)
def client_manager(host: Host) -> socketio.AsyncManager:
    return socketio.AsyncManager()
