"""Fetching a campaign from Meta and joining it with the release Metacentric knows about."""

from __future__ import annotations

import re

from prefect import task
from prefect.cache_policies import NO_CACHE

from metacentric.settings import Settings
from metacentric.store import Store
from models import Campaign, Creative
from platforms.meta import MetaClient
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, PLATFORM_RETRY_JITTER, retry_if_retriable

# "Artist - Song", with a hyphen, an en dash or an em dash.
_ARTIST_SONG = re.compile(r"^\s*(?P<artist>[^-\u2013\u2014]+?)\s+[-\u2013\u2014]\s+(?P<song>.+?)\s*$")


class ReleaseUnknown(ValueError):
    """Meta has the campaign but Metacentric has no release (artist, song, video) for it."""


def merge_campaign(meta: dict[str, object], known: Campaign | None, settings: Settings) -> Campaign:
    """Meta is the truth for name, budget, objective and status; the store for the release details."""
    name = str(meta.get("name") or "")
    budget = float(str(meta.get("daily_budget") or 0)) or (known.daily_budget if known else 0.0)
    if known is not None:
        return known.model_copy(update={
            "name": name or known.name, "daily_budget": budget,
            "objective": str(meta.get("objective") or known.objective),
            "status": str(meta.get("status") or known.status)})
    match = _ARTIST_SONG.match(name)
    if not match or not settings.default_video_path:
        raise ReleaseUnknown(
            f"campaign {meta.get('id')} ({name!r}) has no release registered in Metacentric. Launch it with "
            "POST /campaigns/create-with-orchestration, or name it 'Artist - Song' and set "
            "METACENTRIC_DEFAULT_VIDEO_PATH to the video to publish.")
    return Campaign.model_validate({
        "id": str(meta["id"]), "name": name, "artist": match["artist"], "song": match["song"],
        "daily_budget": budget, "objective": str(meta.get("objective") or "OUTCOME_ENGAGEMENT"),
        "creative": Creative(video_path=settings.default_video_path), "status": str(meta.get("status") or "ACTIVE"),
    })


@task(name="fetch-campaign", retries=PLATFORM_RETRIES, retry_delay_seconds=PLATFORM_RETRY_DELAYS,
      retry_jitter_factor=PLATFORM_RETRY_JITTER, retry_condition_fn=retry_if_retriable, cache_policy=NO_CACHE)
async def fetch_campaign(meta: MetaClient, store: Store, settings: Settings, campaign_id: str) -> Campaign:
    fields = await meta.get_campaign(campaign_id)
    campaign = merge_campaign(fields, store.get_campaign(campaign_id), settings)
    store.save_campaign(campaign)
    return campaign
