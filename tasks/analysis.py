"""Scoring and planning a campaign: loads the promoted model, asks intelligence/ to analyze, stores the result."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from prefect import task
from prefect.cache_policies import NO_CACHE

from intelligence.analyze import analyze
from intelligence.virality import ViralityModel, cold_start_model
from metacentric.store import Store
from models import Analysis, Campaign, Platform


@lru_cache(maxsize=4)
def _model_from_blob(version: str, blob: str) -> ViralityModel:
    return ViralityModel.from_blob(blob)


def current_model(store: Store) -> ViralityModel:
    """The promoted model; on first use, a cold-start model trained on the simulator (and stored as such)."""
    promoted = store.promoted_model()
    if promoted is None:
        model = cold_start_model()
        store.save_model(model.version, model.source, model.metrics, model.to_blob(), promoted=True)
        return model
    return _model_from_blob(promoted["version"], promoted["blob"])


def unavailable_platforms(store: Store, now: datetime) -> dict[Platform, str]:
    """Platforms known to be unable to take a post now (quota spent), with the reason."""
    reasons: dict[Platform, str] = {}
    for platform in Platform:
        known = store.limit(platform.value, "exhausted")
        if known and datetime.fromisoformat(known["until"]) > now:
            reasons[platform] = f"quota exhausted until {known['until']}: {known.get('reason', '')}".rstrip(": ")
    return reasons


@task(name="analyze", cache_policy=NO_CACHE)
async def analyze_campaign(store: Store, campaign: Campaign, *, now: datetime, immediate: bool = True,
                           min_platform_budget: float = 0.0) -> Analysis:
    """`now` is the platforms' time (the sandbox's clock in sandbox mode): quota windows are in it."""
    existing = store.latest_analysis(campaign.id)
    if existing is not None:
        # A re-run keeps the plan it started with, so copy and split do not change under a half-done launch.
        return existing
    analysis, features = analyze(campaign, now=now, model=current_model(store),
                                 unavailable=unavailable_platforms(store, now), immediate=immediate,
                                 min_platform_budget=min_platform_budget)
    store.save_analysis(analysis, features)
    return analysis
