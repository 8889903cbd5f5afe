"""What the store says about the polls of a session, read through the public Store API.

The store is the only truth: a poll exists once its ``open`` message is stored,
and a member has voted once their ``vote`` message is stored. :class:`PollIndex`
reads each session's messages once, oldest first with ``Store.messages_after``,
and later reads only what was stored since, so a vote costs one small query.
This works across nodes too, because every node reads the same store.

:class:`InFlight` closes the window between a handler's check and the store's
write on this node: two votes of one member sent at the same moment would both
pass the check otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from pydantic import ValidationError

from tkr_host import Message, Store
from tkr_poll.payloads import OpenPoll, PollPayload

#: Messages read per ``messages_after`` call while catching up.
PAGE = 500
#: Seconds a check stays reserved when its message is never stored (a store
#: error, a veto by another plugin): the host tells a type only about successes.
RESERVATION_TTL_S = 30.0
#: Reservations kept before expired ones are dropped.
PURGE_AT = 1024
TYPE_NAME = "poll"


@dataclass
class Poll:
    """An opened poll and who has voted in it."""

    poll_id: str
    question: str
    options: list[str]
    opened_by: str
    message_id: str
    voters: set[str] = field(default_factory=set)


@dataclass
class SessionPolls:
    """The polls of one session, as of the message at ``scanned_seq``."""

    scanned_seq: int = 0
    polls: dict[str, Poll] = field(default_factory=dict)

    def apply(self, message: Message) -> None:
        if message.type != TYPE_NAME:
            return
        try:
            action = PollPayload.model_validate(message.payload).root
        except ValidationError:
            return  # stored by another plugin's `poll` type, or by an older version
        if isinstance(action, OpenPoll):
            if action.poll_id not in self.polls:
                self.polls[action.poll_id] = Poll(action.poll_id, action.question, list(action.options), message.sender.id, message.id)
        elif (poll := self.polls.get(action.poll_id)) is not None:
            poll.voters.add(message.sender.id)


class PollIndex:
    """Every session's polls, brought up to date from the store on demand."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionPolls] = {}

    async def polls(self, store: Store, session_id: str) -> dict[str, Poll]:
        """The session's polls, including every message stored until now."""
        state = self._sessions.setdefault(session_id, SessionPolls())
        while True:
            page = await store.messages_after(session_id, state.scanned_seq, PAGE)
            for message in page:
                # Another refresh of the same session may have got here first.
                if message.seq > state.scanned_seq:
                    state.apply(message)
                    state.scanned_seq = message.seq
            if len(page) < PAGE:
                return state.polls


@dataclass(frozen=True)
class Reservation:
    client_id: str | None
    expires: float


class InFlight:
    """Checks that passed and whose message is not stored yet, by key.

    The same ``client_id`` may claim its own key again: that is the client
    resending one message, which the store's idempotency keeps single.
    """

    def __init__(self, ttl_s: float = RESERVATION_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._held: dict[Hashable, Reservation] = {}

    def claim(self, key: Hashable, client_id: str | None) -> bool:
        """Reserve ``key`` for ``client_id``; False when another message holds it."""
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None and held.expires > now and held.client_id != client_id:
            return False
        if len(self._held) >= PURGE_AT:
            self._held = {k: r for k, r in self._held.items() if r.expires > now}
        self._held[key] = Reservation(client_id, now + self.ttl_s)
        return True

    def release(self, key: Hashable, client_id: str | None) -> None:
        held = self._held.get(key)
        if held is not None and held.client_id == client_id:
            del self._held[key]
