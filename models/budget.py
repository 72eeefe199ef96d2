"""Budget decisions: what the optimizer wants to change, why, and what happened to it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.analysis import SPLIT_TOLERANCE
from models.platform import Platform


class DecisionOutcome(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"  # Meta refused, approval timed out, or it was rejected
    DRY_RUN = "dry_run"
    UNCHANGED = "unchanged"
    PENDING = "pending"  # intent recorded, Meta not yet confirmed


class BudgetDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    window: str = Field(description="The optimisation window, e.g. '2026-11-28' or 'launch'; one decision each.")
    decided_at: datetime
    daily_budget: float = Field(gt=0)
    before: dict[Platform, float]
    after: dict[Platform, float]
    reason: str = Field(min_length=1)
    model_version: str = "allocator-v1"
    approved_by: str | None = None
    outcome: DecisionOutcome = DecisionOutcome.PENDING
    detail: str | None = None

    @model_validator(mode="after")
    def _after_sums_to_budget(self) -> BudgetDecision:
        total = sum(self.after.values())
        if abs(total - self.daily_budget) > SPLIT_TOLERANCE:
            raise ValueError(f"after: adds up to {total:.2f}, must equal daily_budget {self.daily_budget:.2f}")
        if any(v < 0 for v in self.after.values()):
            raise ValueError("after: amounts must be >= 0")
        return self

    @property
    def largest_move(self) -> float:
        platforms = set(self.before) | set(self.after)
        return max((abs(self.after.get(p, 0.0) - self.before.get(p, 0.0)) for p in platforms), default=0.0)
