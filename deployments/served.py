"""The three deployments, served by one long-running process (no work pool to set up).

`metacentric serve` starts this as a child process; `python -m deployments.served` runs it alone.
Runs created by schedules, by the UI's "Run" button, or by `run_deployment` are executed here.
"""

from __future__ import annotations

from typing import Any

from prefect import serve

from flows.launch_campaign import launch_campaign
from flows.optimize_campaigns import optimize_campaigns
from flows.retrain_model import retrain_model

OPTIMIZE_CRON = "0 */6 * * *"  # every 6 hours
RETRAIN_CRON = "30 3 * * *"  # daily, 03:30 UTC


def main(limit: int = 8) -> None:
    deployments: list[Any] = [
        launch_campaign.to_deployment(name="launch-campaign", description="Launch one Meta campaign everywhere."),
        optimize_campaigns.to_deployment(name="optimize-campaigns", cron=OPTIMIZE_CRON,
                                         parameters={"campaign_ids": None, "dry_run": False},
                                         description="Collect metrics and re-split budgets within guardrails."),
        retrain_model.to_deployment(name="retrain-model", cron=RETRAIN_CRON,
                                    description="Train on stored outcomes; promote only if better."),
    ]
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    main()
