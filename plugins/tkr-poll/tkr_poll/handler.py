"""The ``poll`` message type: open a poll, or vote in one once."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from pydantic import BaseModel

from tkr_host import HostError, Message, MessageContext, MessageDraft
from tkr_poll.index import TYPE_NAME, InFlight, Poll, PollIndex
from tkr_poll.payloads import OpenPoll, PollPayload, Vote
from tkr_poll.settings import PollSettings

PLUGIN_NAME = "poll"


class PollType:
    """Stored and delivered to the session like ``text``, after these checks:

    * ``open``: the sender has one of ``open_roles`` (when set), and the
      ``poll_id`` is new in the session (``conflict.poll_exists``).
    * ``vote``: the poll was opened earlier in the same session
      (``not_found.poll``), the option is one of its indexes
      (``validation.payload``), and the sender has not voted in it yet
      (``conflict.already_voted``).

    One instance serves one host, so its index is that host's.
    """

    name: ClassVar[str] = TYPE_NAME
    payload_model: ClassVar[type[BaseModel]] = PollPayload

    def __init__(self) -> None:
        self.index = PollIndex()
        self.in_flight = InFlight()

    async def handle(self, ctx: MessageContext, draft: MessageDraft) -> None:
        action = PollPayload.model_validate(draft.payload).root
        if isinstance(action, OpenPoll):
            self._check_open_role(ctx)
            key: Hashable = (ctx.session.id, "open", action.poll_id)
        else:
            key = (ctx.session.id, "vote", action.poll_id, ctx.principal.id)
        # Claimed before the first await, so that a concurrent twin finds it.
        claimed = self.in_flight.claim(key, draft.client_id)
        try:
            polls = await self.index.polls(ctx.host.store, ctx.session.id)
            if isinstance(action, OpenPoll):
                if action.poll_id in polls:
                    raise HostError("conflict.poll_exists", message="This session already has a poll with that poll_id.",
                                    hint="Choose another poll_id, or vote in the poll that is open.")
            else:
                self._check_vote(ctx, action, polls.get(action.poll_id))
            if not claimed:
                # What the store says wins; only an undecided twin is "pending".
                raise HostError("conflict.poll_pending", message="Another message of yours about this poll is being stored.",
                                hint="Wait a moment, then send again; you will then learn whether the first one counted.",
                                retry_after=1.0)
        except BaseException:
            self.in_flight.release(key, draft.client_id)
            raise

        async def stored(message: Message) -> None:
            self.in_flight.release(key, draft.client_id)

        ctx.after_store.append(stored)

    def _check_open_role(self, ctx: MessageContext) -> None:
        settings = ctx.host.config(PLUGIN_NAME, PollSettings)
        if settings.open_roles and not set(ctx.principal.roles) & set(settings.open_roles):
            raise HostError("permission.poll_open", message="You may not open polls in this host.",
                            hint=f"Ask someone with one of the roles {', '.join(settings.open_roles)} to open the poll.",
                            details={"roles": list(settings.open_roles)})

    def _check_vote(self, ctx: MessageContext, vote: Vote, poll: Poll | None) -> None:
        if poll is None:
            raise HostError("not_found.poll", message="No poll with that poll_id was opened in this session.",
                            hint="Check the poll_id, or open the poll first with action \"open\".")
        if vote.option >= len(poll.options):
            last = len(poll.options) - 1
            raise HostError("validation.payload", message=f"The poll has options 0 to {last}.",
                            hint=f"Send an option index from 0 to {last}.",
                            details={"fields": [{"field": "payload.vote.option", "problem": f"must be between 0 and {last}"}]})
        if ctx.principal.id in poll.voters:
            raise HostError("conflict.already_voted", message="You have already voted in this poll.",
                            hint="Each member votes once per poll; your first vote stands.")
