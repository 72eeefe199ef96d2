"""retrain-model: trains on the outcomes in the store, evaluates on a later hold-out, promotes only if better."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from flows.calling import final_state
from flows.retrain_model import retrain_model
from intelligence.features import FEATURE_COLUMNS
from intelligence.training_data import simulate_outcomes
from metacentric.runtime import Runtime
from metacentric.tables import AnalysisRow


def store_outcomes(rt: Runtime, n_campaigns: int, *, seed: int, scramble: bool = False) -> None:
    """Write simulated launches as the launch flow would: features at analysis time, then daily ad results."""
    frame = simulate_outcomes(n_campaigns, seed=seed)
    rng = np.random.default_rng(seed)
    for i, (cid, rows) in enumerate(frame.groupby("campaign_id", sort=False)):
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=3 * i)
        features = {"feature_version": "f1", "model_version": "test", "at": at.isoformat(),
                    "rows": {r["platform"]: {c: float(r[c]) for c in FEATURE_COLUMNS} for _, r in rows.iterrows()}}
        with rt.store.session() as s:
            s.add(AnalysisRow(campaign_id=str(cid), data={}, features=features, created_at=at))
        for _, r in rows.iterrows():
            engagement = float(rng.permutation(frame["engagement"])[0]) if scramble else float(r["engagement"])
            rt.store.upsert_snapshot(str(cid), r["platform"], "ad", at.date().isoformat(),
                                     {"spend": float(r["spend"]), "impressions": 0, "video_views": 0,
                                      "engagements": engagement})


async def test_retrain_waits_for_enough_outcomes(rt: Runtime) -> None:
    store_outcomes(rt, 5, seed=1)
    state = await final_state(retrain_model)
    result = await state.aresult()
    assert result["trained"] is False and "waits for at least" in result["reason"]


async def test_retrain_on_noise_is_not_promoted(rt: Runtime) -> None:
    store_outcomes(rt, 80, seed=2, scramble=True)  # engagement unrelated to the features
    result = await (await final_state(retrain_model)).aresult()
    assert result["trained"] is True and result["promoted"] is False
    versions = rt.store.model_versions()
    promoted = [v for v in versions if v["promoted"]]
    assert len(promoted) == 1 and promoted[0]["source"] == "simulator"  # the cold-start model stays
    assert any(v["version"] == result["version"] and not v["promoted"] for v in versions)


async def test_retrain_records_a_versioned_candidate_with_its_metrics(rt: Runtime) -> None:
    store_outcomes(rt, 120, seed=3)
    result = await (await final_state(retrain_model)).aresult()
    assert result["trained"] is True
    candidate = next(v for v in rt.store.model_versions() if v["version"] == result["version"])
    assert candidate["source"] == "outcomes"
    assert {"spearman", "mae", "n"} <= set(candidate["metrics"])
    assert candidate["metrics"]["spearman"] > 0.3  # it learned something real from the outcomes
    assert candidate["promoted"] is result["promoted"]
