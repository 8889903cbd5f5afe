"""The ``poll`` payload: open a poll, or vote in one, told apart by ``action``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

MIN_OPTIONS = 2
MAX_OPTIONS = 10

PollId = Annotated[str, Field(min_length=1, max_length=64)]
OptionText = Annotated[str, Field(min_length=1, max_length=200)]


class OpenPoll(BaseModel):
    """``{action: "open", poll_id, question, options}``: a new poll in the session."""

    model_config = ConfigDict(strict=True, extra="forbid")

    action: Literal["open"]
    poll_id: PollId
    question: str = Field(min_length=1, max_length=500)
    options: list[OptionText] = Field(min_length=MIN_OPTIONS, max_length=MAX_OPTIONS)

    @field_validator("options")
    @classmethod
    def options_are_unique(cls, options: list[str]) -> list[str]:
        if len(set(options)) != len(options):
            raise ValueError("options must be unique")
        return options


class Vote(BaseModel):
    """``{action: "vote", poll_id, option}``: ``option`` is an index into the poll's options."""

    model_config = ConfigDict(strict=True, extra="forbid")

    action: Literal["vote"]
    poll_id: PollId
    option: int = Field(ge=0, le=MAX_OPTIONS - 1)


PollAction = Annotated[OpenPoll | Vote, Field(discriminator="action")]


class PollPayload(RootModel[PollAction]):
    """The payload model of the ``poll`` type; ``.root`` is an OpenPoll or a Vote."""
