"""Posting the aggregated table to the seed's UNIFIED_ANALYTICS_ENDPOINT (optional)."""

from __future__ import annotations

from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE


@task(name="post-unified-analytics", retries=3, retry_delay_seconds=[1, 2, 4], retry_jitter_factor=0.5,
      cache_policy=NO_CACHE)
async def post_unified_analytics(http: httpx.AsyncClient, endpoint: str, campaign_id: str,
                                 rows: list[dict[str, Any]]) -> int:
    response = await http.post(endpoint, json={"campaign_id": campaign_id, "rows": rows})
    response.raise_for_status()
    return response.status_code
