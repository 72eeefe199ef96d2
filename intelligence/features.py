"""Feature rows for the virality model: one row per (campaign, platform, moment), in a fixed column order.

The column order and every code table below are part of the model's contract: a model stores the
FEATURE_VERSION it was trained with, so changing a column, its meaning or a code means a new version.
Every value is a plain float (no NaN) so a row can be stored as JSON next to the analysis that used it.
Unknown values are encoded as 0 with a companion `*_known` flag, which trees split on cleanly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.campaign import META_OBJECTIVES, Campaign
from models.platform import ALL_PLATFORMS, Platform

FEATURE_VERSION = "f1"

FEATURE_COLUMNS: tuple[str, ...] = (
    "platform_code",  # index in PLATFORM_CODES
    "objective_code",  # index in META_OBJECTIVES
    "daily_budget",  # the campaign's whole daily budget
    "spend",  # daily spend on this platform the engagement refers to (default: an even split over 4)
    "audience_size",
    "n_countries",
    "age_span",
    "n_interests",
    "duration_s",
    "aspect_ratio",  # width / height: 0.5625 for 9:16
    "genre_code",  # index in GENRE_CODES; len(GENRE_CODES) for anything else
    "followers",  # the artist's followers on this platform (0 when unknown)
    "followers_known",
    "past_engagement",  # the artist's mean engagement per past post on this platform (0 when none)
    "past_posts",
    "hour",  # local hour in the audience's time zone
    "weekday",  # local weekday, Monday = 0
    "days_since_release",  # negative before the release date (0 when unknown)
    "release_known",
)

PLATFORM_CODES: tuple[Platform, ...] = ALL_PLATFORMS
# Appending is safe within a version (old codes keep their meaning); reordering is not.
GENRE_CODES: tuple[str, ...] = (
    "pop", "hiphop", "rock", "electronic", "latin", "country", "indie", "rnb",
    "jazz", "classical", "metal", "kpop", "afrobeats", "reggaeton", "folk", "soul",
)
OTHER_GENRE = len(GENRE_CODES)
# What share of the daily budget one platform gets when the caller gives no spend: an even split over
# all four platforms, the same reference the simulator training data uses on average.
DEFAULT_SPEND_SHARE = 1 / len(ALL_PLATFORMS)


class ArtistHistory(BaseModel):
    """What the store knows about the artist from earlier releases, per platform."""

    model_config = ConfigDict(extra="forbid")

    followers: dict[Platform, int] = Field(default_factory=dict)
    past_engagement: dict[Platform, float] = Field(default_factory=dict, description="Mean per post.")
    past_posts: dict[Platform, int] = Field(default_factory=dict, description="Posts that mean is over.")


def genre_code(genre: str) -> int:
    """'Hip-Hop', 'hip hop' and 'hiphop' are one genre; 'R&B' is 'rnb'."""
    key = re.sub(r"[^a-z0-9]", "", genre.lower().replace("&", "n"))
    return GENRE_CODES.index(key) if key in GENRE_CODES else OTHER_GENRE


def aspect_ratio_value(ratio: str) -> float:
    width, _, height = ratio.partition(":")
    w, h = float(width), float(height)
    return w / h if h > 0 else 1.0


def local_time(when: datetime, timezone: str) -> datetime:
    """`when` in the audience's time zone; naive datetimes are taken as UTC, unknown zones as UTC."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo("UTC"))
    return when.astimezone(zone)


def build_features(
    campaign: Campaign,
    platform: Platform,
    when: datetime,
    history: ArtistHistory | None = None,
    *,
    spend: float | None = None,
) -> dict[str, float]:
    """The feature row of `campaign` on `platform` if it launched at `when`.

    `spend` is the daily amount on this platform the prediction is for; by default an even split of
    the daily budget over the four platforms (what the model's engagement figures are comparable at).
    """
    history = history or ArtistHistory()
    followers = campaign.artist_followers.get(platform, history.followers.get(platform))
    posts = history.past_posts.get(platform, 0)
    past = history.past_engagement.get(platform)
    local = local_time(when, campaign.targeting.timezone)
    released = _parse_date(campaign.release_date)
    row = {
        "platform_code": float(PLATFORM_CODES.index(platform)),
        "objective_code": float(META_OBJECTIVES.index(campaign.objective)),
        "daily_budget": float(campaign.daily_budget),
        "spend": float(spend if spend is not None else campaign.daily_budget * DEFAULT_SPEND_SHARE),
        "audience_size": float(campaign.targeting.audience_size),
        "n_countries": float(len(campaign.targeting.countries)),
        "age_span": float(max(0, campaign.targeting.age_max - campaign.targeting.age_min)),
        "n_interests": float(len(campaign.targeting.interests)),
        "duration_s": float(campaign.creative.duration_s),
        "aspect_ratio": aspect_ratio_value(campaign.creative.aspect_ratio),
        "genre_code": float(genre_code(campaign.creative.genre)),
        "followers": float(followers or 0),
        "followers_known": float(followers is not None),
        "past_engagement": float(past) if past is not None and posts > 0 and math.isfinite(past) else 0.0,
        "past_posts": float(posts if past is not None else 0),
        "hour": float(local.hour),
        "weekday": float(local.weekday()),
        "days_since_release": float((local.date() - released).days) if released else 0.0,
        "release_known": float(released is not None),
    }
    return {name: row[name] for name in FEATURE_COLUMNS}


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # the pattern allows 2026-13-45; treat an impossible date as unknown
        return None


def features_frame(rows: Iterable[Mapping[str, float]],
                   columns: tuple[str, ...] = FEATURE_COLUMNS) -> pd.DataFrame:
    """Rows as a float frame in `columns` order; a column a row lacks (an older version) is NaN."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(columns))
    return frame.astype("float64")
