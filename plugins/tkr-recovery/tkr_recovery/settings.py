"""The ``[plugins.recovery]`` table: which strategies run, in which order, on what budget."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RecoverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Strategy names, outermost first. A strategy offered by another plugin
    #: through ``recovery_strategies`` runs only when it is named here.
    order: list[str] = Field(default_factory=lambda: ["circuit_breaker", "retry"])
    #: Attempts of one store operation, the first included.
    retry_attempts: int = Field(default=3, ge=1, le=10)
    #: First backoff; it doubles each attempt, with full jitter.
    retry_base_delay_s: float = Field(default=0.05, ge=0, le=5)
    retry_max_delay_s: float = Field(default=0.5, ge=0, le=30)
    #: Total seconds one operation may spend retrying before it gives up.
    retry_budget_s: float = Field(default=2.0, gt=0, le=60)
    #: Consecutive failed operations that open the breaker.
    breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    #: Seconds the breaker stays open before it lets one probe through.
    breaker_reset_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _unique_order(self) -> RecoverySettings:
        if len(set(self.order)) != len(self.order):
            raise ValueError("order names a strategy twice")
        if self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError("retry_max_delay_s must be at least retry_base_delay_s")
        return self
