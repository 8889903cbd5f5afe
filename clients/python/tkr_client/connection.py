"""One Socket.IO connection to one namespace, kept up by the SDK's own reconnect loop.

python-socketio's client is used with ``reconnection=False``: its built-in loop
adds a fixed ±0.5 s, which does not spread a herd, and it cannot wait out a
host's ``retry_after``. :class:`Link` makes a fresh ``socketio.AsyncClient``
for every attempt, waits :class:`~tkr_client.backoff.Backoff` delays between
them, and turns every python-socketio failure into a :class:`TkrError`.

Why full jitter: python-socketio waits ``base * factor**n`` plus a fixed
±0.5 s, so a thousand clients dropped by one restart come back within the same
second and meet the connect rate limit together. Full jitter (AWS Architecture
Blog, "Exponential Backoff And Jitter") draws each delay uniformly from
``[0, min(cap, base * factor**attempt)]``, which spreads them over the window.

Several URLs (the nodes of one deployment) give failover: after a failed
connect or a drop, the next attempt goes to the next URL, round robin, so a
client of a dead or draining node is back on another within one backoff delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import socketio

from tkr_client.errors import TkrError, client_error

log = logging.getLogger("tkr_client")

State = Literal["connecting", "connected", "reconnecting", "closed"]
TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
#: One host URL, or the URLs of several nodes of one deployment (failover, in order).
Urls = str | Sequence[str]


def url_list(urls: Urls) -> list[str]:
    """The URLs as a non-empty list, without trailing slashes; a string may list several, comma-separated."""
    found = [part.strip().rstrip("/") for part in urls.split(",")] if isinstance(urls, str) else [url.rstrip("/") for url in urls]
    found = [url for url in found if url]
    if not found:
        raise ValueError("at least one host URL is needed")
    return found
EventHandler = Callable[[Any], Awaitable[None]]

#: Refusals a new token may cure; any other ``auth.*`` or ``permission.*`` stops the loop.
TOKEN_REFUSALS = frozenset({"auth.invalid", "auth.expired"})
FATAL_CATEGORIES = frozenset({"auth", "permission", "validation", "not_found", "protocol"})
#: Refusals that are not the client's fault even though their category usually is.
TRANSIENT_CODES = frozenset({"auth.banned", "protocol.shutting_down"})


@dataclass(frozen=True)
class StateChange:
    """What a state callback receives."""

    state: State
    attempt: int = 0
    #: Seconds until the next attempt, while reconnecting.
    delay: float | None = None
    error: TkrError | None = None


@dataclass(frozen=True)
class ClientState:
    """What a state callback receives: the connection state and the queue's size."""

    state: State
    queued: int
    attempt: int = 0
    delay: float | None = None
    error: TkrError | None = None


@dataclass(frozen=True)
class Backoff:
    """How long to wait before attempt ``n`` (0-based) after a failure.

    :param base: the window of the first attempt, in seconds.
    :param cap: the largest window, in seconds.
    :param factor: how much the window grows per attempt.
    """

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1:
            raise ValueError("backoff needs base > 0, cap >= base and factor >= 1")

    def window(self, attempt: int) -> float:
        """The upper end of attempt ``attempt``'s delay."""
        # min() before the power could overflow: factor**attempt grows without bound.
        exponent = min(attempt, 64)
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """A full-jitter delay for ``attempt``. A host's ``retry_after`` is waited
        out first and the jitter added after it, so the clients it refused
        together do not all come back at the same instant."""
        drawn = self.rng.uniform(0.0, self.window(attempt))
        return retry_after + drawn if retry_after is not None and retry_after > 0 else drawn


async def resolve_token(source: TokenSource) -> str:
    """The token to connect with now: the string, or what the callable returns."""
    if isinstance(source, str):
        return source
    value = source()
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value:
        raise client_error("bad_token", "The token callable did not return a non-empty string.",
                           "Return the credential as a str from the token callable.")
    return value


class Link:
    """A namespace connection that comes back after every drop, until closed."""

    def __init__(
        self,
        url: Urls,
        namespace: str,
        token: TokenSource,
        *,
        backoff: Backoff,
        on_connected: Callable[[], Awaitable[None]],
        on_state: Callable[[StateChange], None],
        transports: list[str] | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 30.0,
    ) -> None:
        self.urls = url_list(url)
        self._current = 0
        self.namespace = namespace
        self._token = token
        self.backoff = backoff
        self._on_connected = on_connected
        self._on_state = on_state
        self.transports = transports or ["websocket"]
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._handlers: dict[str, EventHandler] = {}
        self._sio: socketio.AsyncClient | None = None
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self.state: State = "closed"
        self.fatal: TkrError | None = None
        self._last_error: TkrError | None = None

    @property
    def url(self) -> str:
        """The URL this link connects (or is connected) to."""
        return self.urls[self._current]

    def _fail_over(self) -> None:
        if len(self.urls) > 1:
            self._current = (self._current + 1) % len(self.urls)
            log.info("%s: next attempt goes to %s", self.namespace, self.url)

    # --- handlers -----------------------------------------------------------------

    def on(self, event: str, handler: EventHandler) -> None:
        """Run ``handler(data)`` for each server event ``event`` (on every future connection)."""
        self._handlers[event] = handler

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, wait: bool = True) -> None:
        """Start the loop; with ``wait``, return once connected (or raise the fatal refusal)."""
        # A loop that gave up (a refusal waiting cannot cure) has ended: start anew.
        if self._task is None or self._task.done():
            self._first = asyncio.get_running_loop().create_future()
            self._closing.clear()
            self.fatal = None
            self._task = asyncio.create_task(self._run(), name=f"tkr-link{self.namespace}")
        if wait and self._first is not None:
            await asyncio.shield(self._first)

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        self._closing.set()
        sio = self._sio
        if sio is not None:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        if self._task is not None:
            # The loop notices `closing` at its next wait; a token callable or a
            # connect that hangs is cancelled.
            _, pending = await asyncio.wait({self._task}, timeout=1.0)
            if pending:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
            sio, self._sio = self._sio, None
            if sio is not None:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
        self._set_state(StateChange("closed"))

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def wait_connected(self) -> None:
        """Return once connected; raise the fatal error if the loop stopped."""
        while not self._up.is_set():
            if self.fatal is not None:
                raise self.fatal
            if self._closing.is_set():
                raise client_error("closed", "The client is closed.", "Create a new client, or call connect() again.")
            waiters = {asyncio.ensure_future(self._up.wait()), asyncio.ensure_future(self._closing.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    # --- calls --------------------------------------------------------------------

    async def call(self, event: str, data: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Emit with an ack and return the ack's fields; a refusal raises its TkrError.

        A drop while waiting raises ``client.disconnected`` at once (python-socketio's
        own ``call`` would wait for its whole timeout).
        """
        sio = self._sio
        if sio is None or not self._up.is_set():
            raise client_error("disconnected", "Not connected to the host.", "Wait for the client to reconnect, then try again.")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not answer.done():
                answer.set_result(args[0] if args else None)

        down = asyncio.ensure_future(self._down.wait())
        try:
            await sio.emit(event, data, namespace=self.namespace, callback=on_ack)
            done, _ = await asyncio.wait({answer, down}, timeout=timeout or self.call_timeout, return_when=asyncio.FIRST_COMPLETED)
        except TkrError:
            raise
        except Exception as exc:  # python-socketio's own errors never leave the SDK
            raise client_error("disconnected", f"The connection failed while sending {event}.",
                               "Wait for the client to reconnect, then try again.") from exc
        finally:
            down.cancel()
        if answer not in done:
            answer.cancel()
            if down in done:
                raise client_error("disconnected", f"The connection dropped before the host answered {event}.",
                                   "The client reconnects; queued sends are sent again.")
            raise client_error("timeout", f"The host did not answer {event} in time.", "Try again; the host may be overloaded.")
        ack = answer.result()
        if not isinstance(ack, dict) or "ok" not in ack:
            raise client_error("bad_ack", f"The host answered {event} with something that is not an ack.",
                               "Check that the URL points at a tkr-host speaking protocol 1.1.")
        if ack["ok"] is not True:
            raise TkrError.from_wire(ack.get("error"))
        return {key: value for key, value in ack.items() if key != "ok"}

    # --- the loop -----------------------------------------------------------------

    def _set_state(self, change: StateChange) -> None:
        if change.state == self.state and change.state in ("connected", "closed"):
            return
        self.state = change.state
        try:
            self._on_state(change)
        except Exception:
            log.exception("a state callback failed")

    async def _run(self) -> None:
        attempt = 0
        ever_connected = False
        refused_token: str | None = None  # the token behind the last auth.invalid / auth.expired
        self._set_state(StateChange("connecting"))
        try:
            while not self._closing.is_set():
                error: TkrError | None = None
                try:
                    token = await resolve_token(self._token)
                    if token == refused_token and self._last_error is not None:
                        raise self._last_error  # the callable has nothing fresher: stop
                    await self._connect_once(token)
                except TkrError as refusal:
                    error = refusal
                    if refusal.code in TOKEN_REFUSALS and not isinstance(self._token, str) and token != refused_token:
                        refused_token = token  # one more try, with what the callable gives next
                    elif self._is_fatal(refusal):
                        self._stop(refusal, attempt)
                        return
                except Exception as exc:  # the application's token callable failed: try again later
                    log.warning("the token callable failed (%s); trying again", type(exc).__name__)
                    error = client_error("bad_token", "The token callable raised an exception.", "Fix the token callable.")
                if error is None:
                    ever_connected, refused_token, self._last_error = True, None, None
                    self._set_state(StateChange("connected"))
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                    # The backoff restarts only once the resume went through: a
                    # connect whose resume keeps failing must not loop at attempt 0.
                    if await self._resume():
                        attempt = 0
                    await self._serve_connection()
                    if self._closing.is_set():
                        return
                    error = self._last_error  # an `error` event before the drop may carry retry_after
                    self._fail_over()  # the node dropped us (died, drained): try another first
                else:
                    self._last_error = error
                    self._fail_over()
                delay = self.backoff.delay(attempt, error.retry_after if error is not None else None)
                attempt += 1
                self._set_state(StateChange("reconnecting" if ever_connected else "connecting", attempt, delay, error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
        finally:
            self._up.clear()
            self._down.set()
            if self._first is not None and not self._first.done():
                self._first.set_exception(client_error("closed", "The client was closed before it connected.", "Call connect() again."))
                self._first.exception()  # retrieved: nobody may be waiting

    def _stop(self, error: TkrError, attempt: int) -> None:
        """A refusal that waiting cannot cure: report it and stop reconnecting."""
        self.fatal = error
        self._set_state(StateChange("closed", attempt, None, error))
        if self._first is not None and not self._first.done():
            self._first.set_exception(error)
            self._first.exception()

    @staticmethod
    def _is_fatal(error: TkrError) -> bool:
        if error.code in TRANSIENT_CODES:
            return False
        return error.category in FATAL_CATEGORIES

    async def _connect_once(self, token: str) -> None:
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        refusals: list[Any] = []

        async def on_connect_error(data: Any = None) -> None:
            refusals.append(data)

        async def on_disconnect(*_: Any) -> None:
            if self._sio is sio:
                self._up.clear()
                self._down.set()

        async def on_error(data: Any = None) -> None:
            # Sent just before the host closes the connection: its retry_after counts.
            error = TkrError.from_wire(data)
            self._last_error = error
            handler = self._handlers.get("error")
            if handler is not None:
                await handler(data)

        sio.on("connect_error", on_connect_error, namespace=self.namespace)
        sio.on("disconnect", on_disconnect, namespace=self.namespace)
        for event, handler in self._handlers.items():
            if event != "error":
                sio.on(event, handler, namespace=self.namespace)
        sio.on("error", on_error, namespace=self.namespace)
        self._down.clear()
        self._sio = sio
        started = time.monotonic()
        try:
            await sio.connect(self.url, namespaces=[self.namespace], auth={"token": token}, transports=self.transports,
                              wait_timeout=self.connect_timeout)
        except Exception as exc:
            self._sio = None
            with contextlib.suppress(Exception):
                await sio.disconnect()
            raise _refusal(refusals, exc, time.monotonic() - started) from None
        self._up.set()

    async def _resume(self) -> bool:
        """Run the owner's resume; if it fails, drop the connection to try again.

        The refusal is kept as the last error, so the next attempt waits out its
        ``retry_after`` (a ``rate_limit.*`` or ``store.unavailable`` on a join).
        """
        try:
            await self._on_connected()
            return True
        except TkrError as error:
            log.warning("resuming after connect failed (%s); reconnecting", error.code)
            self._last_error = error
        except Exception:
            log.exception("resuming after connect failed; reconnecting")
        sio = self._sio
        if sio is not None:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        return False

    async def _serve_connection(self) -> None:
        """Wait for the drop (or close)."""
        waiters = {asyncio.ensure_future(self._down.wait()), asyncio.ensure_future(self._closing.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._up.clear()
        sio, self._sio = self._sio, None
        if sio is not None:
            with contextlib.suppress(Exception):
                await sio.disconnect()


def _refusal(refusals: list[Any], exc: BaseException, elapsed: float) -> TkrError:
    """The Error behind a failed connect: the host's refusal, or ``client.unreachable``."""
    for data in refusals:
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            return TkrError.from_wire(data["data"])
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            return TkrError.from_wire(data)
    return client_error("unreachable", f"Could not reach the host ({type(exc).__name__} after {elapsed:.1f} s).",
                        "Check the URL and that the host runs; the client keeps trying.")
