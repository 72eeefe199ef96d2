"""retrain-model: outcomes in the store -> train XGBoost -> evaluate on a time hold-out -> promote if better."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from intelligence.virality import MIN_HOLDOUT_ROWS, outcomes_frame, retrain
from metacentric.runtime import get_runtime
from tasks.analysis import current_model
from tasks.training import gather_outcomes


@flow(name="retrain-model", log_prints=True)
async def retrain_model(seed: int = 0) -> dict[str, object]:
    logger = get_run_logger()
    rt = get_runtime()
    outcomes = gather_outcomes(rt.store)
    if len(outcomes) < MIN_HOLDOUT_ROWS * 3:
        message = f"{len(outcomes)} outcomes stored; retraining waits for at least {MIN_HOLDOUT_ROWS * 3}"
        logger.info(message)
        return {"trained": False, "reason": message}
    current = current_model(rt.store)
    result = retrain(outcomes_frame(outcomes), current, seed=seed)
    rt.store.save_model(result.candidate.version, "outcomes", result.candidate_metrics, result.candidate.to_blob(),
                        promoted=result.promote)
    summary = (f"# Retrain\n\nCandidate `{result.candidate.version}` on {len(outcomes)} outcomes: "
               f"{'**promoted**' if result.promote else 'kept the current model'} ({result.reason}).\n\n"
               f"Candidate hold-out: {result.candidate_metrics}\n\nCurrent (`{current.version}`): "
               f"{result.current_metrics}")
    await acreate_markdown_artifact(markdown=summary, key="retrain-model", description="Model promotion decision")
    return {"trained": True, "promoted": result.promote, "version": result.candidate.version,
            "reason": result.reason}
