"""The virality model: XGBoost on log1p(engagement) per (campaign, platform), and its virality score.

Pure code: training takes a frame and returns a model, a model becomes a string (`to_blob`) and back;
where the string is kept is the caller's business (the store's model_versions table).

The score of a campaign is the mean, over its platforms, of the percentile of the predicted engagement
among the predictions the model made for its own training rows on that platform (101 reference
quantiles per platform are kept in the model). Per platform, because X simply engages less than
TikTok: a campaign that only wants X should not score low for that alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xgboost
from numpy.typing import ArrayLike
from scipy.stats import spearmanr

from intelligence.features import FEATURE_COLUMNS, FEATURE_VERSION, PLATFORM_CODES
from models.platform import Platform

BLOB_FORMAT = "metacentric.virality/1"
TARGET = "engagement"
TIME_COLUMN = "timestamp"
ALL_ROWS = "all"  # the reference quantiles over every platform: used for a platform never trained on
_GRID = np.linspace(0.0, 1.0, 101)

# Small, shallow trees: the signal is a few smooth effects (followers, audience, spend, genre x platform),
# and a cold start has to train in about a second. One thread: on thousands of rows threads cost more
# than they save (10x slower on a busy 2-core machine), and a flow worker shares its cores anyway.
NTHREAD = 1
DEFAULT_PARAMS: dict[str, Any] = {
    "nthread": NTHREAD,
    "objective": "reg:squarederror",
    "tree_method": "hist",
    "eta": 0.08,
    "max_depth": 5,
    "min_child_weight": 3,
    "subsample": 0.8,
    "colsample_bytree": 0.9,
    "lambda": 1.0,
}
DEFAULT_ROUNDS = 250
COLD_START_CAMPAIGNS = 1500


class ViralityModel:
    """A trained booster plus what it needs to be used and compared: columns, reference quantiles, metrics."""

    def __init__(self, booster: xgboost.Booster, *, source: str, feature_columns: Sequence[str],
                 feature_version: str, quantiles: Mapping[str, Sequence[float]],
                 metrics: Mapping[str, Any] | None = None, offset_column: str | None = None) -> None:
        self._booster = booster
        booster.set_param({"nthread": NTHREAD})  # not saved with the model; scoring one campaign needs one
        self.source = source  # "simulator" (cold start) or "outcomes" (trained on what really happened)
        self.feature_columns = tuple(feature_columns)
        self.feature_version = feature_version
        self.quantiles = {k: [float(v) for v in q] for k, q in quantiles.items()}
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.offset_column = offset_column
        self._raw = bytes(booster.save_raw("json"))
        settings = json.dumps([self.quantiles, self.feature_columns, offset_column], sort_keys=True)
        digest = hashlib.sha256(self._raw + settings.encode()).hexdigest()
        self.version = f"{feature_version}-{source}-{digest[:12]}"

    # prediction ------------------------------------------------------------------------------------
    def predict_log(self, frame: pd.DataFrame) -> np.ndarray:
        """log1p(engagement) predicted for each row of a frame (columns the frame lacks count as missing)."""
        matrix = frame.reindex(columns=list(self.feature_columns)).to_numpy(dtype=np.float64)
        return self._predict_matrix(matrix, _offsets(frame, self.offset_column))

    def _predict_matrix(self, matrix: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
        logs = self._booster.inplace_predict(matrix, base_margin=offsets)
        return np.asarray(logs, dtype=np.float64).reshape(-1)

    def predict(self, rows: Mapping[Platform, Mapping[str, float]]) -> dict[Platform, float]:
        """Predicted daily engagement per platform, from one feature row per platform."""
        if not rows:
            return {}
        matrix = np.array([[row.get(c, math.nan) for c in self.feature_columns] for row in rows.values()],
                          dtype=np.float64)
        offsets = (np.array([row.get(self.offset_column, 0.0) for row in rows.values()], dtype=np.float64)
                   if self.offset_column else None)
        logs = self._predict_matrix(matrix, offsets)
        return {p: max(0.0, math.expm1(float(v))) for p, v in zip(rows, logs, strict=True)}

    def percentile(self, platform: Platform | str, engagement: float) -> float:
        """Where `engagement` falls among this model's predictions for its training rows on `platform`."""
        reference = self.quantiles.get(str(platform)) or self.quantiles[ALL_ROWS]
        return float(np.interp(math.log1p(max(0.0, engagement)), reference, _GRID))

    def score(self, predicted: Mapping[Platform, float]) -> float:
        """The virality score in [0, 1]: the mean percentile of the predictions over the platforms given."""
        if not predicted:
            return 0.0
        value = sum(self.percentile(p, e) for p, e in predicted.items()) / len(predicted)
        return min(1.0, max(0.0, value))

    def score_rows(self, rows: Mapping[Platform, Mapping[str, float]]) -> float:
        return self.score(self.predict(rows))

    # persistence -----------------------------------------------------------------------------------
    def to_blob(self) -> str:
        """One JSON string: the XGBoost model (its own JSON format) plus everything else needed to use it."""
        return json.dumps({
            "format": BLOB_FORMAT,
            "version": self.version,
            "source": self.source,
            "feature_version": self.feature_version,
            "feature_columns": list(self.feature_columns),
            "quantiles": self.quantiles,
            "metrics": self.metrics,
            "offset_column": self.offset_column,
            "booster": self._raw.decode(),
        })

    @classmethod
    def from_blob(cls, blob: str) -> ViralityModel:
        data = json.loads(blob)
        if data.get("format") != BLOB_FORMAT:
            raise ValueError(f"not a virality model blob: format {data.get('format')!r}, not {BLOB_FORMAT}")
        booster = xgboost.Booster()
        booster.load_model(bytearray(data["booster"].encode()))
        model = cls(booster, source=data["source"], feature_columns=data["feature_columns"],
                    feature_version=data["feature_version"], quantiles=data["quantiles"],
                    metrics=data["metrics"], offset_column=data.get("offset_column"))
        if model.version != data["version"]:
            raise ValueError(f"model blob is corrupt: its content is {model.version}, not {data['version']}")
        return model


# training and evaluation ---------------------------------------------------------------------------
def train(frame: pd.DataFrame, *, seed: int = 0, source: str = "simulator",
          feature_columns: Sequence[str] = FEATURE_COLUMNS, feature_version: str = FEATURE_VERSION,
          rounds: int = DEFAULT_ROUNDS, params: Mapping[str, Any] | None = None,
          offset_column: str | None = None) -> ViralityModel:
    """Fit on every row of `frame`: feature columns and `engagement` (`platform` for per-platform scores).

    `offset_column`, if given, names a column already on the log1p scale (say the creator's running mean)
    that the trees start from and correct, instead of predicting the level from scratch. Trees cannot
    extrapolate; a creator whose audience grows past anything in training needs the level handed in.
    """
    if frame.empty:
        raise ValueError("cannot train on an empty frame")
    matrix = frame.reindex(columns=list(feature_columns)).to_numpy(dtype=np.float64)
    target = np.log1p(frame[TARGET].clip(lower=0).to_numpy(dtype=np.float64))
    offsets = _offsets(frame, offset_column)
    data = xgboost.DMatrix(matrix, label=target, base_margin=offsets, feature_names=list(feature_columns))
    booster = xgboost.train({**DEFAULT_PARAMS, **(params or {}), "seed": seed}, data, num_boost_round=rounds)
    booster.feature_names = None  # predict from plain arrays in column order (fast, and checked by us)
    fitted = np.asarray(booster.inplace_predict(matrix, base_margin=offsets), dtype=np.float64).reshape(-1)
    quantiles = {ALL_ROWS: _quantiles(fitted)}
    if "platform" in frame:
        for platform, positions in frame.groupby("platform").indices.items():
            quantiles[str(platform)] = _quantiles(fitted[positions])
    return ViralityModel(booster, source=source, feature_columns=feature_columns,
                         feature_version=feature_version, quantiles=quantiles, offset_column=offset_column)


def _offsets(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """The offset column on the log scale, 0 where it is missing; None when the model has no offset."""
    if column is None:
        return None
    return frame[column].fillna(0.0).to_numpy(dtype=np.float64)


def _quantiles(values: np.ndarray) -> list[float]:
    q = np.quantile(values, _GRID)
    # np.interp wants increasing points; ties (a flat stretch of predictions) get nudged apart.
    return [float(v) for v in np.maximum.accumulate(q) + np.arange(len(q)) * 1e-9]


def evaluate(model: ViralityModel, frame: pd.DataFrame) -> dict[str, float]:
    """Spearman of predicted vs realised engagement, MAE of log1p(engagement), and the number of rows."""
    predicted = model.predict_log(frame)
    actual = np.log1p(frame[TARGET].clip(lower=0).to_numpy(dtype=np.float64))
    return {"spearman": rank_correlation(predicted, actual),
            "mae": float(np.mean(np.abs(predicted - actual))) if len(actual) else math.nan,
            "n": float(len(actual))}


def rank_correlation(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rho; 0.0 when it is undefined (fewer than 3 rows, or a constant side)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def time_split(frame: pd.DataFrame, holdout_fraction: float = 0.2,
               time_column: str = TIME_COLUMN) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the holdout is the latest `holdout_fraction` of moments.

    Rows sharing a timestamp (a campaign's platforms) stay on one side, so nothing about a held-out
    campaign leaks into training.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError("holdout_fraction must be between 0 and 1")
    moments = np.sort(frame[time_column].unique())
    if len(moments) < 2:
        raise ValueError("a time-based split needs at least two distinct timestamps")
    cut = moments[min(len(moments) - 1, max(1, int(len(moments) * (1 - holdout_fraction))))]
    later = frame[time_column] >= cut
    return frame[~later], frame[later]


@lru_cache(maxsize=4)
def cold_start_model(seed: int = 0, n_campaigns: int = COLD_START_CAMPAIGNS) -> ViralityModel:
    """A model trained on simulated campaigns, for before any real outcome exists (cached per arguments).

    Trained on the earlier 80 % of the simulated launches; its metrics are measured on the later 20 %.
    """
    from intelligence.training_data import simulate_outcomes  # the simulator is only needed here

    train_part, holdout = time_split(simulate_outcomes(n_campaigns, seed=seed))
    model = train(train_part, seed=seed, source="simulator")
    model.metrics.update(evaluate(model, holdout), n_campaigns=n_campaigns, seed=seed)
    return model


# training on stored outcomes and promotion --------------------------------------------------------
class Outcome(NamedTuple):
    """What the retrain flow knows about one published (campaign, platform)."""

    features: Mapping[str, float]  # the row analyze() stored for that platform
    platform: Platform | str
    engagement: float  # realised; the same measure the model predicts (paid engagements per day)
    timestamp: datetime
    campaign_id: str = ""
    spend: float | None = None  # the spend it was realised at, when it differs from the stored row's


def outcomes_frame(records: Iterable[Outcome | tuple[Any, ...]]) -> pd.DataFrame:
    """A training frame (FEATURE_COLUMNS + platform, engagement, timestamp, campaign_id) from outcomes."""
    rows: list[dict[str, Any]] = []
    for record in records:
        outcome = Outcome(*record)
        platform = Platform(outcome.platform)
        row: dict[str, Any] = {c: outcome.features.get(c, math.nan) for c in FEATURE_COLUMNS}
        row["platform_code"] = float(PLATFORM_CODES.index(platform))  # the record's platform is the truth
        if outcome.spend is not None:
            row["spend"] = float(outcome.spend)
        row.update(platform=platform.value, engagement=float(outcome.engagement),
                   timestamp=pd.Timestamp(outcome.timestamp), campaign_id=outcome.campaign_id)
        rows.append(row)
    return pd.DataFrame.from_records(rows, columns=[*FEATURE_COLUMNS, "platform", TARGET, TIME_COLUMN,
                                                    "campaign_id"])


# A candidate must rank held-out outcomes clearly better (a Spearman gain below 0.02 is within the noise
# of a few hundred rows) and must not trade that for much worse magnitudes (MAE at most 5 % higher).
PROMOTION_MIN_SPEARMAN_GAIN = 0.02
PROMOTION_MAX_MAE_RATIO = 1.05
MIN_HOLDOUT_ROWS = 30


def promotion_decision(candidate: Mapping[str, float],
                       current: Mapping[str, float] | None) -> tuple[bool, str]:
    """(promote?, why). Both metric sets must come from the same hold-out rows."""
    if candidate.get("n", 0) < MIN_HOLDOUT_ROWS:
        return False, f"hold-out has {candidate.get('n', 0):.0f} rows; at least {MIN_HOLDOUT_ROWS} are needed"
    # A rank correlation under about 2/sqrt(n) is what chance alone gives on n rows: not evidence.
    chance = 2 / math.sqrt(candidate["n"])
    if candidate["spearman"] < chance:
        return False, (f"candidate Spearman {candidate['spearman']:.3f} is within chance "
                       f"(< {chance:.3f} on {candidate['n']:.0f} hold-out rows)")
    if not current:
        return candidate["spearman"] > 0, f"no current model; candidate Spearman {candidate['spearman']:.3f}"
    gain = candidate["spearman"] - current["spearman"]
    if gain < PROMOTION_MIN_SPEARMAN_GAIN:
        return False, (f"Spearman {candidate['spearman']:.3f} vs current {current['spearman']:.3f}: "
                       f"gain {gain:+.3f} is under {PROMOTION_MIN_SPEARMAN_GAIN}")
    if candidate["mae"] > current["mae"] * PROMOTION_MAX_MAE_RATIO:
        return False, (f"MAE {candidate['mae']:.3f} is over {PROMOTION_MAX_MAE_RATIO}x "
                       f"the current {current['mae']:.3f}")
    return True, (f"Spearman {candidate['spearman']:.3f} vs {current['spearman']:.3f}, "
                  f"MAE {candidate['mae']:.3f} vs {current['mae']:.3f}")


def should_promote(candidate_metrics: Mapping[str, float],
                   current_metrics: Mapping[str, float] | None) -> bool:
    return promotion_decision(candidate_metrics, current_metrics)[0]


@dataclass(frozen=True)
class RetrainResult:
    candidate: ViralityModel
    candidate_metrics: dict[str, float]
    current_metrics: dict[str, float] | None
    promote: bool
    reason: str


def retrain(frame: pd.DataFrame, current: ViralityModel | None, *, seed: int = 0,
            holdout_fraction: float = 0.2) -> RetrainResult:
    """Train a candidate on the earlier outcomes, score it and the current model on the later ones, decide."""
    train_part, holdout = time_split(frame, holdout_fraction)
    candidate = train(train_part, seed=seed, source="outcomes")
    candidate_metrics = evaluate(candidate, holdout)
    candidate.metrics.update(candidate_metrics)
    current_metrics = evaluate(current, holdout) if current is not None else None
    promote, reason = promotion_decision(candidate_metrics, current_metrics)
    return RetrainResult(candidate, candidate_metrics, current_metrics, promote, reason)
