"""One table per campaign from every platform's numbers: platform x day, with pandas.

Inputs are metric snapshots as stored: "ad" rows (one day of paid delivery from Meta insights) and
"post" rows (a post's cumulative organic counters as of a day). Cumulative counters become daily
increments here, so paid and organic add up per day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["campaign_id", "platform", "day", "spend", "paid_views", "paid_engagement", "organic_views",
           "organic_engagement", "views", "engagement", "cost_per_engaged_view", "trend"]
_KEYS = ["campaign_id", "platform", "day"]


def _frame(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for col in columns:
        if col not in df:
            df[col] = np.nan
    return df[columns]


def aggregate(ad_rows: Iterable[Mapping[str, Any]], post_rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Platform x day table: spend, views, engagement (paid + organic), cost per engaged view, trend."""
    ads = _frame(ad_rows, [*_KEYS, "spend", "video_views", "engagements"])
    ads = ads.groupby(_KEYS, as_index=False).agg(
        spend=("spend", "sum"), paid_views=("video_views", "sum"), paid_engagement=("engagements", "sum"))

    posts = _frame(post_rows, [*_KEYS, "views", "likes", "comments", "shares", "saves"])
    posts["organic_engagement_cum"] = posts[["likes", "comments", "shares", "saves"]].sum(axis=1, min_count=1)
    posts = posts.rename(columns={"views": "organic_views_cum"}).sort_values(_KEYS)
    grouped = posts.groupby(["campaign_id", "platform"])
    # Cumulative counters -> daily increments (the first snapshot counts whole). None stays missing.
    posts["organic_views"] = grouped["organic_views_cum"].diff().fillna(posts["organic_views_cum"])
    posts["organic_engagement"] = grouped["organic_engagement_cum"].diff().fillna(posts["organic_engagement_cum"])
    posts = posts[[*_KEYS, "organic_views", "organic_engagement"]]

    table = ads.merge(posts, on=_KEYS, how="outer")
    numeric = ["spend", "paid_views", "paid_engagement", "organic_views", "organic_engagement"]
    table[numeric] = table[numeric].astype(float).fillna(0.0).clip(lower=0.0)
    table["views"] = table["paid_views"] + table["organic_views"]
    table["engagement"] = table["paid_engagement"] + table["organic_engagement"]
    table["cost_per_engaged_view"] = np.where(table["engagement"] > 0,
                                              table["spend"] / table["engagement"].where(table["engagement"] > 0),
                                              np.nan)
    table = table.sort_values(_KEYS).reset_index(drop=True)
    # Trend: engagement over the last 3 days against the 3 before, per platform (NaN until there is history).
    rolling = (table.groupby(["campaign_id", "platform"], sort=False)["engagement"]
               .rolling(3, min_periods=1).mean().reset_index(level=[0, 1], drop=True))
    previous = table.assign(r=rolling).groupby(["campaign_id", "platform"])["r"].shift(3)
    table["trend"] = (rolling - previous) / previous.where(previous > 0)
    return table[COLUMNS]


def platform_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Totals per platform (for the artifact and the dashboard)."""
    if table.empty:
        return pd.DataFrame(columns=["platform", "spend", "views", "engagement", "cost_per_engaged_view"])
    summary = table.groupby("platform", as_index=False)[["spend", "views", "engagement"]].sum()
    summary["cost_per_engaged_view"] = summary["spend"] / summary["engagement"].where(summary["engagement"] > 0)
    return summary
