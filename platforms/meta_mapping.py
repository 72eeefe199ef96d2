"""Metacentric's shapes to Graph's and back: targeting specs out, insight rows (strings and action lists,
as Graph sends them) in as AdMetrics."""

from __future__ import annotations

from datetime import date
from typing import Any

from models import AdMetrics, Platform

AD_SET_PREFIX = "metacentric:"
DEFAULT_TARGETING: dict[str, Any] = {"geo_locations": {"countries": ["US"]}}


def meta_targeting(targeting: dict[str, Any] | None) -> dict[str, Any]:
    """A Graph targeting spec. Accepts one as is, or Metacentric's Targeting (models.campaign) as a dict.

    Interests are left out: Graph wants interest ids, which only its targeting search can give, and
    guessing would narrow the audience wrongly. Audience size and time zone are not targeting at all.
    """
    if not targeting:
        return dict(DEFAULT_TARGETING)
    if "geo_locations" in targeting:
        return dict(targeting)
    spec: dict[str, Any] = {"geo_locations": {"countries": list(targeting.get("countries") or ["US"])}}
    for key in ("age_min", "age_max"):
        if targeting.get(key) is not None:
            spec[key] = int(targeting[key])
    return spec


def _action(row: dict[str, Any], field: str, action_type: str) -> int:
    for entry in row.get(field) or []:
        if entry.get("action_type") == action_type:
            return int(float(entry.get("value") or 0))
    return 0


def platform_of(adset_name: str) -> Platform | None:
    if not adset_name.startswith(AD_SET_PREFIX):
        return None
    try:
        return Platform(adset_name.removeprefix(AD_SET_PREFIX))
    except ValueError:
        return None


def parse_rows(campaign_id: str, rows: list[dict[str, Any]]) -> list[AdMetrics]:
    """One AdMetrics per (platform ad set, day); rows of ad sets Metacentric did not create are skipped."""
    out = []
    for row in rows:
        platform = platform_of(str(row.get("adset_name", "")))
        if platform is None:
            continue
        views = _action(row, "video_play_actions", "video_view") or _action(row, "actions", "video_view")
        out.append(AdMetrics(
            campaign_id=campaign_id, platform=platform, day=date.fromisoformat(str(row["date_start"])),
            spend=float(row.get("spend") or 0), impressions=int(float(row.get("impressions") or 0)),
            video_views=views, engagements=_action(row, "actions", "post_engagement")))
    return sorted(out, key=lambda m: (m.day, m.platform.value))
