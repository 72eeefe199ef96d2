"""Turning what happened into training data for the virality model."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from intelligence.virality import Outcome
from metacentric.store import Store
from models import Platform


@task(name="gather-outcomes", cache_policy=NO_CACHE)
def gather_outcomes(store: Store) -> list[Outcome]:
    """One outcome per (campaign, platform) with paid delivery: mean engagements/day at its mean spend."""
    features = {cid: (rows, at) for cid, rows, at in store.analyses_with_features()}
    outcomes: list[Outcome] = []
    for campaign_id, (stored, analysed_at) in features.items():
        per_platform: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for snap in store.snapshots(campaign_id, kind="ad"):
            per_platform[snap["platform"]].append((float(snap["spend"]), float(snap["engagements"])))
        for platform, days in per_platform.items():
            row = stored.get("rows", {}).get(platform)
            if not row or not days:
                continue
            spend = sum(s for s, _ in days) / len(days)
            engagement = sum(e for _, e in days) / len(days)
            at = datetime.fromisoformat(stored["at"]) if stored.get("at") else analysed_at
            outcomes.append(Outcome(row, Platform(platform), engagement, at, campaign_id, spend))
    return outcomes
