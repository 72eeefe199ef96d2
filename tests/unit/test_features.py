"""Feature rows: a stable, complete column order and values that mean what their names say."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from intelligence.features import (
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    OTHER_GENRE,
    ArtistHistory,
    build_features,
    features_frame,
    genre_code,
)
from intelligence.training_data import OUTCOME_COLUMNS, simulate_outcomes
from models import Campaign, Creative, Platform, Targeting

WHEN = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # a Friday; 18:30 in New York


def make_campaign(**overrides: object) -> Campaign:
    values: dict[str, object] = {
        "id": "120000000001",
        "name": "Launch",
        "artist": "Nova",
        "song": "Orbit",
        "daily_budget": 100.0,
        "creative": Creative(video_path="v.mp4", duration_s=42, aspect_ratio="9:16", genre="Hip-Hop"),
        "targeting": Targeting(countries=["US", "CA"], audience_size=2_000_000, timezone="America/New_York"),
        "release_date": "2026-03-10",
        "artist_followers": {Platform.TIKTOK: 50_000},
    }
    values.update(overrides)
    return Campaign.model_validate(values)


def test_column_order_is_pinned_to_the_version() -> None:
    # Changing this tuple changes what stored models mean: bump FEATURE_VERSION with it.
    assert FEATURE_VERSION == "f1"
    assert FEATURE_COLUMNS == (
        "platform_code", "objective_code", "daily_budget", "spend", "audience_size", "n_countries",
        "age_span", "n_interests", "duration_s", "aspect_ratio", "genre_code", "followers", "followers_known",
        "past_engagement", "past_posts", "hour", "weekday", "days_since_release", "release_known",
    )
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)


def test_row_is_complete_ordered_finite_and_json() -> None:
    for platform in Platform:
        row = build_features(make_campaign(), platform, WHEN)
        assert tuple(row) == FEATURE_COLUMNS
        assert all(isinstance(v, float) and math.isfinite(v) for v in row.values())
        json.dumps(row)


def test_values_mean_what_they_say() -> None:
    row = build_features(make_campaign(), Platform.TIKTOK, WHEN)
    assert row["platform_code"] == list(Platform).index(Platform.TIKTOK)
    assert row["daily_budget"] == 100 and row["spend"] == 25  # an even split over four platforms
    assert row["n_countries"] == 2 and row["audience_size"] == 2_000_000
    assert row["aspect_ratio"] == 9 / 16 and row["duration_s"] == 42
    assert row["genre_code"] == genre_code("hiphop")
    assert row["followers"] == 50_000 and row["followers_known"] == 1
    # Local time in the audience's zone: Friday 18:30 in New York, four days before the release.
    assert (row["hour"], row["weekday"]) == (18, 4)
    assert row["days_since_release"] == -4 and row["release_known"] == 1
    assert build_features(make_campaign(), Platform.TIKTOK, WHEN, spend=60)["spend"] == 60


def test_unknowns_are_zero_with_a_flag_and_history_fills_in() -> None:
    campaign = make_campaign(release_date=None, artist_followers={})
    bare = build_features(campaign, Platform.YOUTUBE, WHEN)
    assert (bare["followers"], bare["followers_known"]) == (0, 0)
    assert (bare["days_since_release"], bare["release_known"]) == (0, 0)
    assert (bare["past_engagement"], bare["past_posts"]) == (0, 0)
    history = ArtistHistory(followers={Platform.YOUTUBE: 900}, past_engagement={Platform.YOUTUBE: 120.5},
                            past_posts={Platform.YOUTUBE: 3})
    known = build_features(campaign, Platform.YOUTUBE, WHEN, history)
    assert (known["followers"], known["followers_known"]) == (900, 1)
    assert (known["past_engagement"], known["past_posts"]) == (120.5, 3)
    # The campaign's own figure wins over the history's.
    assert build_features(make_campaign(artist_followers={Platform.YOUTUBE: 5}), Platform.YOUTUBE, WHEN,
                          history)["followers"] == 5


def test_genre_codes_normalise_spelling() -> None:
    assert genre_code("Hip Hop") == genre_code("hip-hop") == genre_code("HIPHOP")
    assert genre_code("R&B") == genre_code("rnb")
    assert genre_code("sea shanty") == OTHER_GENRE


def test_frame_keeps_column_order_and_marks_missing_columns() -> None:
    rows = [build_features(make_campaign(), p, WHEN) for p in Platform]
    frame = features_frame(reversed([dict(reversed(r.items())) for r in rows]))
    assert tuple(frame.columns) == FEATURE_COLUMNS
    assert len(frame) == 4
    older = features_frame([{"platform_code": 1.0}])
    assert older["platform_code"].iloc[0] == 1 and math.isnan(older["spend"].iloc[0])


def test_simulated_outcomes_are_complete_and_reproducible() -> None:
    frame = simulate_outcomes(12, seed=3)
    assert tuple(frame.columns) == (*FEATURE_COLUMNS, *OUTCOME_COLUMNS)
    assert len(frame) == 12 * 4
    assert (frame["expected_engagement"] > 0).all() and (frame["engagement"] >= 0).all()
    assert frame.groupby("campaign_id")["timestamp"].nunique().eq(1).all()  # a campaign launches once
    assert frame.equals(simulate_outcomes(12, seed=3))
