"""analyze(): a valid Analysis for any reasonable campaign, and a clear error when nothing can be chosen."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.analyze import analyze, initial_split
from intelligence.features import FEATURE_COLUMNS, FEATURE_VERSION, ArtistHistory
from intelligence.training_data import simulate_outcomes
from intelligence.virality import ViralityModel, train
from models import Analysis, Campaign, Creative, Platform, Targeting

NOW = datetime(2026, 4, 2, 15, 17, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> ViralityModel:
    return train(simulate_outcomes(200, seed=5), seed=0, rounds=60)


CAMPAIGNS = [
    Campaign(id="1", name="a", artist="Nova", song="Orbit", daily_budget=100,
             creative=Creative(video_path="v.mp4")),
    Campaign(id="2", name="b", artist="ÄÖÜ 東京 🎸", song="x" * 200, daily_budget=0.01,
             platforms=[Platform.X], creative=Creative(video_path="v.mp4", genre="rock"),
             targeting=Targeting(timezone="Asia/Kolkata", countries=["IN"], audience_size=30_000)),
    Campaign(id="3", name="c", artist="Big", song="Hit", daily_budget=5000, objective="OUTCOME_AWARENESS",
             platforms=[Platform.TIKTOK, Platform.INSTAGRAM], release_date="2026-04-10",
             creative=Creative(video_path="v.mp4", genre="latin", aspect_ratio="16:9", duration_s=600),
             artist_followers={Platform.TIKTOK: 3_000_000, Platform.INSTAGRAM: 10}),
    Campaign(id="4", name="d", artist="Z", song="Q", daily_budget=33.33,
             platforms=[Platform.YOUTUBE, Platform.X, Platform.TIKTOK],
             creative=Creative(video_path="v.mp4", genre="no such genre"),
             targeting=Targeting(timezone="Not/AZone")),
]


@pytest.mark.parametrize("campaign", CAMPAIGNS, ids=lambda c: c.id)
def test_analysis_is_valid_and_consistent(campaign: Campaign, model: ViralityModel) -> None:
    analysis, features = analyze(campaign, now=NOW, model=model)
    # It survives the round trip through the store and a process boundary.
    again = Analysis.model_validate_json(analysis.model_dump_json(by_alias=True), context={"now": NOW})
    assert again == analysis
    assert set(analysis.recommended_platforms) <= set(campaign.platforms)
    assert set(analysis.recommended_platforms) | set(analysis.skipped) == set(campaign.platforms)
    assert set(analysis.budget_split) == set(analysis.recommended_platforms)
    assert abs(sum(analysis.budget_split.values()) - campaign.daily_budget) < 1e-6
    assert {s.platform for s in analysis.schedule} == set(analysis.recommended_platforms)
    assert all(s.at >= NOW for s in analysis.schedule)
    assert analysis.cold_start and analysis.model_version == model.version
    assert 0 <= analysis.virality_score <= 1
    assert json.loads(json.dumps(features))["feature_version"] == FEATURE_VERSION
    assert set(features["rows"]) == {p.value for p in campaign.platforms}
    assert all(tuple(row) == FEATURE_COLUMNS for row in features["rows"].values())


def test_history_and_unavailable_platforms(model: ViralityModel) -> None:
    history = ArtistHistory(past_engagement={Platform.YOUTUBE: 900.0}, past_posts={Platform.YOUTUBE: 4})
    analysis, features = analyze(CAMPAIGNS[0], now=NOW, model=model, history=history,
                                 unavailable={Platform.TIKTOK: "quota exhausted until tomorrow"})
    assert Platform.TIKTOK not in analysis.recommended_platforms
    assert analysis.skipped[Platform.TIKTOK] == "quota exhausted until tomorrow"
    assert features["rows"]["youtube"]["past_engagement"] == 900.0


def test_given_split_is_used_for_chosen_platforms(model: ViralityModel) -> None:
    split = {Platform.YOUTUBE: 10.0, Platform.TIKTOK: 70.0, Platform.INSTAGRAM: 10.0, Platform.X: 10.0}
    analysis, _ = analyze(CAMPAIGNS[0], now=NOW, model=model, split=split,
                          unavailable={Platform.X: "rate limited"})
    chosen = analysis.recommended_platforms
    assert Platform.X not in analysis.budget_split
    assert analysis.budget_split[Platform.TIKTOK] == pytest.approx(100 * 70 / sum(split[p] for p in chosen),
                                                                   abs=0.01)


def test_immediate_schedule_is_now(model: ViralityModel) -> None:
    analysis, _ = analyze(CAMPAIGNS[0], now=NOW, model=model, immediate=True)
    assert {s.at for s in analysis.schedule} == {NOW}


def test_no_platform_possible_names_the_reasons(model: ViralityModel) -> None:
    with pytest.raises(ValueError, match=r"no platform can be chosen.*x: quota exhausted"):
        analyze(CAMPAIGNS[1], now=NOW, model=model, unavailable={Platform.X: "quota exhausted"})
    with pytest.raises(ValueError, match="no posting slot"):
        analyze(CAMPAIGNS[1], now=NOW, model=model, daily_quota={Platform.X: 0})


@settings(max_examples=200, deadline=None)
@given(predicted=st.dictionaries(st.sampled_from(list(Platform)), st.floats(0, 1e7), min_size=1),
       budget=st.floats(0.01, 1e6).map(lambda b: round(b, 2)), minimum=st.sampled_from([0.0, 1.0, 50.0]))
def test_initial_split_adds_up_with_a_floor(predicted: dict[Platform, float], budget: float,
                                            minimum: float) -> None:
    split = initial_split(predicted, budget, min_platform_budget=minimum)
    assert set(split) == set(predicted)
    assert abs(sum(split.values()) - budget) < 1e-6
    assert all(v >= 0 and round(v, 2) == pytest.approx(v) for v in split.values())
    if budget >= 1:  # with at least a dollar, every platform gets a real share
        floor = 0.2 * budget / len(predicted)
        assert all(v >= floor - 0.01 for v in split.values())
    best = max(predicted, key=lambda p: predicted[p])
    assert split[best] >= max(split.values()) - 0.01
