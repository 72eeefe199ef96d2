"""Collecting metrics: Meta insights per ad set and each platform's post analytics, stored as snapshots."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from metacentric.store import Store
from models import AdMetrics, Platform, PostMetrics
from platforms.base import PublishingClient
from platforms.meta import MetaClient
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, PLATFORM_RETRY_JITTER, retry_if_retriable


@task(name="collect-ad-metrics", retries=PLATFORM_RETRIES, retry_delay_seconds=PLATFORM_RETRY_DELAYS,
      retry_jitter_factor=PLATFORM_RETRY_JITTER, retry_condition_fn=retry_if_retriable, cache_policy=NO_CACHE)
async def collect_ad_metrics(meta: MetaClient, store: Store, campaign_id: str, since: date,
                             until: date) -> list[AdMetrics]:
    rows = await meta.insights(campaign_id, since, until)
    for row in rows:
        store.upsert_snapshot(campaign_id, row.platform.value, "ad", row.day.isoformat(),
                              row.model_dump(mode="json", exclude={"campaign_id", "platform", "day"}))
    return rows


@task(name="collect-post-metrics", retries=PLATFORM_RETRIES, retry_delay_seconds=PLATFORM_RETRY_DELAYS,
      retry_jitter_factor=PLATFORM_RETRY_JITTER, retry_condition_fn=retry_if_retriable, cache_policy=NO_CACHE)
async def collect_post_metrics(client: PublishingClient, store: Store, campaign_id: str, platform: Platform,
                               post_id: str, day: date) -> list[PostMetrics]:
    metrics = await client.fetch_metrics(campaign_id, [post_id], day)
    for m in metrics:
        if m.available:  # "not available yet" is not stored as zero
            store.upsert_snapshot(campaign_id, platform.value, "post", day.isoformat(),
                                  m.model_dump(mode="json", include={"post_id", "views", "likes", "comments",
                                                                     "shares", "saves", "watch_time_s"}))
    return metrics
