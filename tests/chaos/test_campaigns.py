"""Many campaigns through the receiver while every platform faults: each launches once, every chosen
platform ends with exactly one post, and the store, the platforms (sandbox) and Prefect agree.

Deliveries are duplicated (30 %: Meta re-sending the same bytes, or another event for the same campaign)
and shuffled. Every publish endpoint of YouTube, TikTok, Instagram and X answers 20 % of requests with a
transient 5xx, a 429, an ambiguous write (committed, answer lost) or a dropped connection. Platforms whose
retries run out are re-launched afterwards ("reconcile": re-running launch-campaign is the product's
answer, and safe); how many needed it is printed (-s shows it) and bounded.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.world import FAULT_KINDS, World, deliveries_for, fault_plan, keep_figures, running_world


async def run_chaos(world: World, n: int, *, name: str, seed: int, fault_rate: float = 0.2,
                    kinds: tuple[str, ...] = FAULT_KINDS,
                    tiktok_rate_limits: int = 1, duplicate_fraction: float = 0.3, launch_timeout_s: float = 900,
                    reconcile_concurrency: int = 8) -> dict[str, object]:
    started = time.monotonic()
    ids = world.create_campaigns(n, prefix=f"Chaos{seed}")
    deliveries = deliveries_for(ids, world.account, duplicate_fraction=duplicate_fraction,
                                rng=random.Random(seed))
    world.set_faults(fault_plan(fault_rate, kinds, tiktok_rate_limits=tiktok_rate_limits))

    outcomes = await world.deliver(deliveries)
    delivery_kinds = Counter(d.kind for d in deliveries)
    # Each campaign's launch is claimed by exactly one delivery (whichever came first); the rest are
    # duplicates, whatever their order.
    assert outcomes["first:launch"] + outcomes["redelivery:launch"] + outcomes["other-event:launch"] == n
    assert sum(outcomes.values()) == len(deliveries)

    stuck = world.wait_for_launches(ids, timeout_s=launch_timeout_s)
    assert not stuck, f"{len(stuck)} launches never finished: {stuck[:5]}"
    launched_s = time.monotonic() - started
    needing = world.incomplete(ids)
    left = world.reconcile(ids, max_passes=4, concurrency=reconcile_concurrency)  # the faults still on
    fired = world.fired_faults()
    world.set_faults([])
    after_outage = len(left)
    left = world.reconcile(ids, max_passes=2, concurrency=reconcile_concurrency)  # the outage over
    agreement = await world.agreement(ids)
    figures = {
        "campaigns": n, "deliveries": len(deliveries), "delivery_kinds": dict(delivery_kinds),
        "receiver_outcomes": dict(outcomes), "faults_fired": dict(sorted(fired.items())),
        "faults_total": sum(fired.values()),
        "campaigns_needing_reconcile": len(needing),
        "platforms_needing_reconcile": dict(Counter(p for ps in needing.values() for p in ps)),
        "reconcile_runs": sum(world.reconciled.values()), "reconcile_passes": world.pass_log,
        "left_for_after_the_faults": after_outage, "reruns_prefect_refused": len(world.rerun_errors),
        "posts_in_store": agreement.posts_in_store, "posts_on_platforms": agreement.posts_on_platforms,
        "flow_runs": agreement.flow_runs,
        "launch_phase_s": round(launched_s, 1), "total_s": round(time.monotonic() - started, 1),
    }
    keep_figures(name, figures)
    assert not left, f"still unpublished after {world.reconcile_passes} reconcile passes:\n" + "\n".join(
        world.describe(left))
    assert not agreement.problems, "\n".join(agreement.problems[:40])
    assert agreement.posts_in_store == agreement.posts_on_platforms
    assert n + sum(world.reconciled.values()) <= agreement.flow_runs <= n + sum(world.reconciled.values()) + len(
        world.rerun_errors)
    return figures


async def test_fast_slice_15_campaigns_under_faults(chaos_prefect: str, quick_retries: None, tmp_path: Path) -> None:
    """The fast slice that runs in `make test`: the same checks as the big run, on 15 campaigns.

    Without 429s: a 429 is honoured (the platforms ask for 30 s to a minute), which the big run can
    afford and a slice of the default suite cannot.
    """
    with running_world(tmp_path) as world:
        figures = await run_chaos(world, 15, name="campaigns_15_fast_slice", seed=15,
                                  kinds=("transient", "ambiguous", "drop_connection"))
    assert figures["faults_total"] > 0  # the faults did fire


@pytest.mark.chaos
async def test_500_campaigns_under_faults(chaos_prefect: str, tmp_path: Path) -> None:
    # Many launches in flight: most of a launch's time is spent waiting (429 windows of up to a minute,
    # retry backoff, async processing), not computing.
    with running_world(tmp_path, max_concurrent=128, separate_sandbox=True) as world:
        figures = await run_chaos(world, 500, name="campaigns_500", seed=500, launch_timeout_s=1800,
                                  reconcile_concurrency=32)
    # Re-running is the answer for retries that ran out, not a way of life: most launches need none.
    assert figures["campaigns_needing_reconcile"] <= 250  # type: ignore[operator]
