"""Deciding the next budget split from everything observed so far (the allocator lives in intelligence/)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from intelligence.allocation import AllocatorState, Observation, propose, update
from intelligence.guardrails import Bounds
from metacentric.settings import Settings
from metacentric.store import Store
from models import BudgetDecision, Campaign
from tasks.budget import as_platforms

ALLOCATOR_VERSION = "thompson-hill-v1"


def observations(store: Store, campaign_id: str) -> list[Observation]:
    """Every stored day of paid delivery, as (platform, day number, spend, engagement)."""
    return [Observation(platform=row["platform"], day=date.fromisoformat(row["day"]).toordinal(),
                        spend=float(row["spend"]), engagement=float(row["engagements"]))
            for row in store.snapshots(campaign_id, kind="ad")]


def bounds_for(campaign: Campaign, settings: Settings) -> Bounds:
    return Bounds(daily_budget=campaign.daily_budget, min_spend=settings.min_platform_budget,
                  max_step_fraction=settings.max_step_fraction)


@task(name="decide-budget", cache_policy=NO_CACHE)
async def decide_budget(store: Store, settings: Settings, campaign: Campaign, current: dict[str, float],
                       window: str) -> BudgetDecision:
    state = update(AllocatorState(), observations(store, campaign.id))
    seed = int.from_bytes(hashlib.sha256(f"{campaign.id}|{window}".encode()).digest()[:4], "big")
    proposal = propose(state, current, bounds_for(campaign, settings), rng_seed=seed)
    return BudgetDecision(campaign_id=campaign.id, window=window, decided_at=datetime.now(UTC),
                          daily_budget=campaign.daily_budget, before=as_platforms(current),
                          after=as_platforms(proposal.split), reason=proposal.reason,
                          model_version=ALLOCATOR_VERSION)
