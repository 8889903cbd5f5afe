"""A cap on the TCP connections of one client address, below the HTTP layer.

A slowloris never completes a request, so nothing above Hypercorn ever sees
it: the cap has to count accepted sockets. Hypercorn builds its listening
sockets in ``Config.create_sockets()``; :class:`PeerLimitedConfig` hands it
sockets whose ``accept()`` closes a connection at once when its address holds
``max_connections_per_address`` already, and whose accepted connections give
their place back when asyncio closes them. Nothing of Hypercorn is patched.

Addresses in ``exempt_addresses`` (the host's ``trusted_proxies``) are not
counted: behind a proxy every client has the proxy's address, and the proxy
must bound its clients itself. The cap holds where ``tkr-host serve`` runs
one worker; with ``workers > 1`` Hypercorn passes its sockets to worker
processes as plain sockets, and under plain ``hypercorn`` the host does not make
the Config (docs/operations.md says so).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

log = logging.getLogger(__name__)

#: A refused connection is logged once, then once per this many.
REFUSALS_PER_LOG_LINE = 1000


class PeerCounter:
    """Open connections per address."""

    def __init__(self, limit: int, exempt: list[str]) -> None:
        self.limit = limit
        self.exempt = [ipaddress.ip_network(entry, strict=False) for entry in exempt]
        self.open: dict[str, int] = {}
        self.refused = 0

    def is_exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.exempt)

    def take(self, address: str) -> bool:
        """Count a new connection of ``address``; False when it holds ``limit`` already."""
        if self.limit <= 0 or self.is_exempt(address):
            return True
        count = self.open.get(address, 0)
        if count >= self.limit:
            self.refused += 1
            return False
        self.open[address] = count + 1
        return True

    def give_back(self, address: str) -> None:
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)


class CountedConnection(socket.socket):
    """An accepted connection that gives its place back once, when it is closed."""

    counter: PeerCounter | None = None
    address = ""

    def close(self) -> None:
        counter, self.counter = self.counter, None
        if counter is not None:
            counter.give_back(self.address)
        super().close()


class PeerLimitedSocket(socket.socket):
    """A listening socket that refuses connections of an address over its cap."""

    counter: PeerCounter

    def accept(self) -> tuple[socket.socket, Any]:
        # asyncio calls accept() until it raises BlockingIOError, so a refused
        # connection is closed here and the next one is taken.
        while True:
            accepted, address = super().accept()
            peer = str(address[0]) if isinstance(address, tuple) and address else ""
            blocking = accepted.getblocking()
            connection = CountedConnection(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
            connection.setblocking(blocking)  # as socket.socket.accept left it
            if self.counter.take(peer):
                connection.counter, connection.address = self.counter, peer
                return connection, address
            if self.counter.refused % REFUSALS_PER_LOG_LINE == 1:  # a flood must not flood the log
                log.warning("refusing connections from %s: it holds %d open (max_connections_per_address); %d refused so far",
                            peer, self.counter.limit, self.counter.refused)
            connection.close()


def limit_socket(sock: socket.socket, counter: PeerCounter) -> socket.socket:
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    limited = PeerLimitedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    limited.counter = counter
    return limited


class PeerLimitedConfig(HypercornConfig):
    """Hypercorn's Config, whose listening sockets cap connections per address."""

    max_connections_per_address = 0
    exempt_addresses: list[str] = []  # noqa: RUF012 (a Hypercorn-style class default, replaced per instance)
    counter: PeerCounter | None = None

    def create_sockets(self) -> Sockets:
        sockets: Sockets = super().create_sockets()
        if self.max_connections_per_address <= 0 or self.workers > 1:
            return sockets
        self.counter = PeerCounter(self.max_connections_per_address, self.exempt_addresses)
        return Sockets(
            [limit_socket(sock, self.counter) for sock in sockets.secure_sockets],
            [limit_socket(sock, self.counter) for sock in sockets.insecure_sockets],
            sockets.quic_sockets,
        )
