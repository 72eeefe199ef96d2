"""Simulator outcomes: what the cold-start model trains on and what the benchmark scores it against.

Each simulated campaign is a real `Campaign` (so its rows go through `build_features`, the same code path
as production) whose market-relevant fields come from `Market.sample_campaign_features`; the fields the
market ignores (objective, countries, creative shape, timing) are drawn at random so the model learns
to ignore them rather than never seeing them vary.

What "realised engagement" means here, and why:
- the paid engagements of day 0 reported by `Market.ad_outcome` at the spend the row names (the number
  the optimize flow collects from Meta insights, with the market's own log-normal noise);
- `spend` is a random share (10-50 %) of the daily budget, so the model sees the response to spend
  rather than one fixed reference; at prediction time the default is an even split (budget / 4);
- organic post counters are left out: in the market they depend on no campaign feature (a per-post
  random quality), so adding them would only add noise that no model could explain;
- `expected_engagement` is the noise-free mean at the same spend: the ceiling for any model.
The whole set is a pure function of (seed, n_campaigns).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from intelligence.features import FEATURE_COLUMNS, build_features
from models.campaign import META_OBJECTIVES, Campaign, Creative, Targeting
from models.platform import ALL_PLATFORMS, Platform
from sandbox.market import Market

SIMULATION_START = datetime(2025, 1, 6, tzinfo=UTC)
# One simulated launch every few hours: 1,500 campaigns span about half a year.
LAUNCH_EVERY = timedelta(hours=3)
SPEND_SHARE_RANGE = (0.10, 0.50)
FOLLOWERS_UNKNOWN_RATE = 0.15  # teach the model what to do when a campaign does not say

_COUNTRIES = ("US", "GB", "CA", "AU", "DE", "FR", "BR", "MX", "ES", "JP", "NG", "IN")
_ASPECTS = ("9:16", "16:9", "1:1", "4:5")
_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "America/Sao_Paulo",
          "Asia/Tokyo", "UTC")
_OBJECTIVE_WEIGHTS = np.array([0.3, 0.15, 0.4, 0.03, 0.07, 0.05])

OUTCOME_COLUMNS = ("campaign_id", "platform", "timestamp", "engagement", "expected_engagement")


def simulated_campaign(market_features: dict[str, Any], key: str, launched: datetime,
                       rng: np.random.Generator) -> Campaign:
    """A Campaign carrying the market's features, with random values for what the market ignores."""
    followers: dict[Platform, int] = {}
    for platform in ALL_PLATFORMS:
        if rng.random() >= FOLLOWERS_UNKNOWN_RATE:
            followers[platform] = int(market_features[f"followers_{platform.value}"])
    n_countries = int(rng.integers(1, 6))
    release_offset = int(rng.integers(-7, 22))
    has_release = rng.random() < 0.9
    return Campaign(
        id=key,
        name=f"simulated {key}",
        artist=f"Artist {key}",
        song=f"Song {key}",
        daily_budget=float(market_features["daily_budget"]),
        objective=str(rng.choice(META_OBJECTIVES, p=_OBJECTIVE_WEIGHTS)),
        targeting=Targeting(
            countries=[str(c) for c in rng.choice(_COUNTRIES, size=n_countries, replace=False)],
            age_min=int(rng.integers(13, 30)),
            age_max=int(rng.integers(30, 66)),
            interests=["music"] * int(rng.integers(0, 4)),
            audience_size=int(market_features["audience_size"]),
            timezone=str(rng.choice(_ZONES)),
        ),
        creative=Creative(
            video_path="simulated.mp4",
            duration_s=float(rng.uniform(15, 240)),
            aspect_ratio=str(rng.choice(_ASPECTS)),
            genre=str(market_features["genre"]),
        ),
        release_date=(launched - timedelta(days=release_offset)).date().isoformat() if has_release else None,
        artist_followers=followers,
    )


def simulate_outcomes(n_campaigns: int, *, seed: int = 0, market: Market | None = None,
                      start: datetime = SIMULATION_START) -> pd.DataFrame:
    """One row per (campaign, platform): FEATURE_COLUMNS plus OUTCOME_COLUMNS.

    Campaigns are registered in `market` (a fresh `Market(seed)` by default) under keys `sim-<seed>-<i>`.
    """
    market = market if market is not None else Market(seed=seed)
    rng = np.random.default_rng(seed)
    records: list[dict[str, object]] = []
    for i in range(n_campaigns):
        key = f"sim-{seed}-{i}"
        features = market.sample_campaign_features(rng)
        market.register(key, features)
        # Jitter the launch time so every hour of the week is seen.
        launched = start + i * LAUNCH_EVERY + timedelta(minutes=int(rng.integers(0, 180)))
        campaign = simulated_campaign(features, key, launched, rng)
        for platform in ALL_PLATFORMS:
            spend = round(campaign.daily_budget * float(rng.uniform(*SPEND_SHARE_RANGE)), 2)
            row: dict[str, object] = dict(build_features(campaign, platform, launched, spend=spend))
            outcome = market.ad_outcome(key, platform.value, 0, spend)
            row.update(
                campaign_id=key,
                platform=platform.value,
                timestamp=launched,
                engagement=float(outcome["engagements"]),
                expected_engagement=market.expected_engagement(key, platform.value, 0, spend),
            )
            records.append(row)
    return pd.DataFrame.from_records(records, columns=[*FEATURE_COLUMNS, *OUTCOME_COLUMNS])
