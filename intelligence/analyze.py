"""analyze(): one campaign in, one validated Analysis out (score, platforms, budget split, schedule, copy).

Order of decisions: predict every wanted platform -> recommend (drop unavailable and negligible ones)
-> schedule (a platform with no slot in the horizon is dropped too) -> split the budget over what is
left -> write copy. The feature rows are returned beside the Analysis so the store can keep what the
model saw; the retrain flow later pairs them with what really happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from intelligence.copywriter import write_copy
from intelligence.features import FEATURE_VERSION, ArtistHistory, build_features
from intelligence.recommend import recommend
from intelligence.schedule import schedule
from intelligence.virality import ViralityModel
from models.analysis import Analysis
from models.campaign import Campaign
from models.platform import Platform

# Every chosen platform gets at least this share of an even split, so a platform the model is unsure
# about still gets spend, and with it the data the optimize flow needs to learn its real response.
FLOOR_SHARE_OF_EVEN = 0.2


def analyze(
    campaign: Campaign,
    *,
    now: datetime,
    model: ViralityModel,
    history: ArtistHistory | None = None,
    unavailable: Mapping[Platform, str] | None = None,
    split: Mapping[Platform, float] | None = None,
    hour_of_week: Mapping[Platform, Sequence[float]] | None = None,
    daily_quota: Mapping[Platform, int] | None = None,
    immediate: bool = False,
    min_platform_budget: float = 0.0,
) -> tuple[Analysis, dict[str, Any]]:
    """The Analysis of `campaign` at `now`, and the feature rows used (JSON-able).

    `split`, when given, is used as it is for the chosen platforms (rescaled to the daily budget if it
    does not add up); otherwise the split is proportional to predicted engagement with a floor.
    Raises ValueError naming every platform's reason when none can be chosen.
    """
    rows = {p: build_features(campaign, p, now, history) for p in campaign.platforms}
    predicted = model.predict(rows)
    chosen, skipped = recommend(campaign.platforms, predicted, unavailable or {})
    planned = schedule(chosen, now, campaign.targeting.timezone, hour_of_week, daily_quota=daily_quota,
                       immediate=immediate)
    scheduled = {post.platform for post in planned}
    for platform in chosen:
        if platform not in scheduled:
            skipped[platform] = "no posting slot within the next 7 days (daily quota or spacing)"
    chosen = [p for p in chosen if p in scheduled]
    if not chosen:
        reasons = "; ".join(f"{p.value}: {why}" for p, why in skipped.items())
        raise ValueError(f"campaign {campaign.id}: no platform can be chosen ({reasons})")

    given = {p: v for p, v in (split or {}).items() if p in chosen and v > 0}
    budget_split = (rescale_split(given, campaign.daily_budget) if given
                    else initial_split({p: predicted.get(p, 0.0) for p in chosen}, campaign.daily_budget,
                                       min_platform_budget=min_platform_budget))
    analysis = Analysis.model_validate(
        {
            "campaign_id": campaign.id,
            "virality_score": model.score({p: predicted[p] for p in chosen}),
            "model_version": model.version,
            "cold_start": model.source == "simulator",
            "predicted_engagement": {p: round(v, 2) for p, v in predicted.items()},
            "recommended_platforms": chosen,
            "skipped": skipped,
            "daily_budget": campaign.daily_budget,
            "budget_split": budget_split,
            "schedule": planned,
            "copy": {p: write_copy(campaign, p) for p in chosen},
        },
        context={"now": now},
    )
    features = {
        "feature_version": FEATURE_VERSION,
        "model_version": model.version,
        "at": now.isoformat(),
        "rows": {p.value: row for p, row in rows.items()},
    }
    return analysis, features


def initial_split(predicted: Mapping[Platform, float], daily_budget: float, *,
                  min_platform_budget: float = 0.0) -> dict[Platform, float]:
    """The budget proportional to predicted engagement above a floor per platform, summing to the budget.

    The floor is `FLOOR_SHARE_OF_EVEN` of an even share (or `min_platform_budget` if higher, but never
    more than an even share).
    """
    if not predicted:
        return {}
    n = len(predicted)
    floor = min(daily_budget / n, max(min_platform_budget, FLOOR_SHARE_OF_EVEN * daily_budget / n))
    weights = {p: max(0.0, v) if math.isfinite(v) else 0.0 for p, v in predicted.items()}
    top = max(weights.values())
    # Relative to the largest, so tiny (even subnormal) predictions keep their proportions exactly.
    weights = {p: w / top for p, w in weights.items()} if top > 0 else weights
    total = sum(weights.values())
    rest = daily_budget - floor * n
    # Best predicted first, so that when shares tie (all at the floor) the rounding remainder goes to it.
    ranked = sorted(weights, key=lambda p: -weights[p])
    shares = {p: floor + (rest * weights[p] / total if total > 0 else rest / n) for p in ranked}
    cents = to_cents(shares, daily_budget)
    return {p: cents[p] for p in predicted}


def rescale_split(split: Mapping[Platform, float], daily_budget: float) -> dict[Platform, float]:
    total = sum(split.values())
    return to_cents({p: daily_budget * v / total for p, v in split.items()}, daily_budget)


def to_cents(shares: Mapping[Platform, float], daily_budget: float) -> dict[Platform, float]:
    """Round every share but the largest (the first of equals) down to cents; the largest takes the rest,
    so the sum is exact."""
    largest = max(shares, key=lambda p: shares[p])
    rounded = {p: math.floor(v * 100 + 1e-6) / 100 for p, v in shares.items() if p is not largest}
    rounded[largest] = round(daily_budget - sum(rounded.values()), 6)
    return {p: rounded[p] for p in shares}
