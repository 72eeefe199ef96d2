"""The virality model: learns the simulator, round-trips as a blob, scores in [0, 1], promotes carefully."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from intelligence.features import FEATURE_COLUMNS, build_features
from intelligence.training_data import simulate_outcomes
from intelligence.virality import (
    ViralityModel,
    cold_start_model,
    evaluate,
    outcomes_frame,
    promotion_decision,
    retrain,
    should_promote,
    time_split,
    train,
)
from models import Campaign, Creative, Platform, Targeting

NOW = datetime(2026, 5, 1, 18, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_outcomes(300, seed=11)


@pytest.fixture(scope="module")
def model(simulated: pd.DataFrame) -> ViralityModel:
    return train(time_split(simulated)[0], seed=0, rounds=80)


def campaign(followers: int, audience: int, budget: float) -> Campaign:
    return Campaign(id="1", name="c", artist="A", song="S", daily_budget=budget,
                    creative=Creative(video_path="v.mp4", genre="pop"),
                    targeting=Targeting(audience_size=audience),
                    artist_followers={p: followers for p in Platform})


def test_time_split_holds_out_the_latest_whole_campaigns(simulated: pd.DataFrame) -> None:
    train_part, holdout = time_split(simulated, 0.25)
    assert train_part["timestamp"].max() < holdout["timestamp"].min()
    assert not set(train_part["campaign_id"]) & set(holdout["campaign_id"])
    assert 0.2 < len(holdout) / len(simulated) < 0.3


def test_learns_the_simulator(model: ViralityModel, simulated: pd.DataFrame) -> None:
    metrics = evaluate(model, time_split(simulated)[1])
    assert metrics["spearman"] > 0.6
    assert metrics["n"] == 60 * 4
    assert 0 < metrics["mae"] < 1.5


def test_blob_round_trip_predicts_identically(model: ViralityModel, simulated: pd.DataFrame) -> None:
    loaded = ViralityModel.from_blob(model.to_blob())
    assert (loaded.version, loaded.source, loaded.feature_columns) == (model.version, model.source,
                                                                      model.feature_columns)
    assert (loaded.predict_log(simulated) == model.predict_log(simulated)).all()
    rows = {p: build_features(campaign(10_000, 10**6, 100), p, NOW) for p in Platform}
    assert loaded.predict(rows) == model.predict(rows)
    assert loaded.score_rows(rows) == model.score_rows(rows)


def test_blob_that_is_not_a_model_is_refused(model: ViralityModel) -> None:
    with pytest.raises(ValueError, match="not a virality model"):
        ViralityModel.from_blob('{"format": "something else"}')
    tampered = model.to_blob().replace('"source": "simulator"', '"source": "outcomes"')
    with pytest.raises(ValueError, match="corrupt"):
        ViralityModel.from_blob(tampered)


def test_score_is_a_percentile_and_bigger_campaigns_score_higher(model: ViralityModel) -> None:
    small = {p: build_features(campaign(200, 50_000, 20), p, NOW) for p in Platform}
    big = {p: build_features(campaign(2_000_000, 20_000_000, 500), p, NOW) for p in Platform}
    low, high = model.score_rows(small), model.score_rows(big)
    assert 0 <= low < high <= 1
    assert high - low > 0.3
    assert model.score({}) == 0.0
    assert model.score({Platform.X: 1e12}) == 1.0 and model.score({Platform.X: 0.0}) == 0.0


def test_cold_start_model_is_a_simulator_model_with_metrics() -> None:
    cold = cold_start_model(seed=1, n_campaigns=150)
    assert cold.source == "simulator" and cold.version.startswith("f1-simulator-")
    assert {"spearman", "mae", "n"} <= set(cold.metrics)
    assert cold_start_model(seed=1, n_campaigns=150) is cold  # cached


def test_promotion_rule() -> None:
    current = {"spearman": 0.50, "mae": 0.80, "n": 200}
    assert should_promote({"spearman": 0.60, "mae": 0.78, "n": 200}, current)
    assert not should_promote({"spearman": 0.51, "mae": 0.50, "n": 200}, current)  # gain within noise
    assert not should_promote({"spearman": 0.60, "mae": 0.90, "n": 200}, current)  # much worse MAE
    assert not should_promote({"spearman": 0.90, "mae": 0.10, "n": 10}, current)  # too few rows to tell
    assert should_promote({"spearman": 0.30, "mae": 1.0, "n": 200}, None)
    promote, reason = promotion_decision({"spearman": 0.51, "mae": 0.5, "n": 200}, current)
    assert not promote and "gain" in reason


def test_retrain_on_outcomes(simulated: pd.DataFrame, model: ViralityModel) -> None:
    records = [({c: r[c] for c in FEATURE_COLUMNS}, r["platform"], r["engagement"],
                r["timestamp"].to_pydatetime()) for _, r in simulated.iterrows()]
    frame = outcomes_frame(records)
    assert len(frame) == len(simulated) and set(frame["platform"]) == {p.value for p in Platform}
    result = retrain(frame, model, seed=0)
    assert result.candidate.source == "outcomes"
    assert result.candidate_metrics["spearman"] > 0.5
    assert result.current_metrics is not None and result.reason
    assert result.promote == should_promote(result.candidate_metrics, result.current_metrics)


def test_offset_model_starts_from_the_given_level_and_round_trips(simulated: pd.DataFrame) -> None:
    # A creator's running mean handed in as the starting level: predictions follow it beyond training.
    frame = simulated.assign(level=lambda f: f["engagement"].clip(lower=0).pipe(lambda s: s.map(math.log1p)))
    with_offset = train(frame, seed=0, rounds=30, offset_column="level")
    loaded = ViralityModel.from_blob(with_offset.to_blob())
    assert loaded.offset_column == "level"
    assert (loaded.predict_log(frame) == with_offset.predict_log(frame)).all()
    row = {c: float(frame[c].iloc[0]) for c in FEATURE_COLUMNS}
    low = loaded.predict({Platform.X: {**row, "level": 2.0}})[Platform.X]
    high = loaded.predict({Platform.X: {**row, "level": 12.0}})[Platform.X]
    assert high > 100 * low
