"""optimize-campaigns at scale, and the pandas aggregation step alone.

    .venv/bin/python -m bench optimize       # results in bench/results/optimize.json

(a) One optimization cycle (the optimize-campaigns flow, as the demo runs it) for N active campaigns x 4
    platforms, for N in SIZES, then a linear fit t = a + b*N and its extrapolation to 1,000 campaigns
    (labelled as such: 1,000 is not measured here, it does not fit the `make bench` time budget on this
    2-core box).
    Setup (not timed): 4 template posts are published once through the platform clients (one per
    platform); then each campaign is created on Meta through the Meta client with one ad set per platform
    (an even split of $100), registered in the store, and given published post rows that point at the
    template posts. Each campaign therefore makes the same calls as a launched one (Meta insights, four
    platforms' post metrics, ad-set budgets) - only the posts are shared. The sandbox clock is advanced
    one day, as the demo does before each cycle. Approval is switched off for the bench
    (approval_threshold_fraction=1.0) so no run pauses for a person.
(b) intelligence.aggregate.aggregate on synthetic rows: 10,000 campaigns x 4 platforms x 30 days (ad rows
    and cumulative post rows, 1.2 M each), and one campaign (4 x 30) as the flow calls it.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

import numpy as np

from bench.harness import PUBLISHERS, Stack, cpu_delta, isolated, load, plain_launch, stack
from metacentric.clock import advance_sandbox_clock

QUICK = os.environ.get("BENCH_QUICK") == "1"  # a smoke run with tiny sizes
# BENCH_OPTIMIZE_SIZES=100,300,1000 measures 1,000 campaigns directly (about 8 minutes here).
SIZES = (5, 15) if QUICK else tuple(int(n) for n in os.environ.get("BENCH_OPTIMIZE_SIZES", "100,300").split(","))
EXTRAPOLATE_TO = 1000
AGG_CAMPAIGNS, AGG_DAYS = (200 if QUICK else 10_000), 30
AGG_REPEATS = 1  # one 10,000-campaign run takes about a minute here; the 1-campaign figure is a median


def fill(st: Stack, n: int, prefix: str, template: dict[str, str]) -> list[str]:
    """n campaigns on Meta with 4 ad sets each, and published post rows in the store (see module doc)."""
    from models import Platform, PublishResult, PublishStatus

    campaigns = st.new_campaigns(n, prefix)
    rt = st.rt

    async def ad_sets(cid: str, slots: asyncio.Semaphore) -> None:
        async with slots:
            await rt.clients.meta.ensure_ad_sets(cid, list(PUBLISHERS), {}, budget=100.0)

    async def all_ad_sets() -> None:
        slots = asyncio.Semaphore(16)
        await asyncio.gather(*[ad_sets(c.id, slots) for c in campaigns])

    st.run(all_ad_sets())
    for c in campaigns:
        for platform, post_id in template.items():
            rt.store.claim_post(c.id, platform)
            rt.store.record_result(PublishResult(campaign_id=c.id, platform=Platform(platform),
                                                 status=PublishStatus.PUBLISHED, post_id=post_id))
        rt.store.set_campaign_state(c.id, "COMPLETED")
    return [c.id for c in campaigns]


def cycle(st: Stack, ids: list[str]) -> dict[str, Any]:
    from flows.calling import final_state
    from flows.optimize_campaigns import optimize_campaigns

    at_start = load()
    cpu = st.cpu()
    started = time.perf_counter()
    state = st.run(final_state(optimize_campaigns, campaign_ids=ids), timeout=1800)
    wall = time.perf_counter() - started
    cpu_per_campaign = cpu_delta(cpu, st.cpu(), per=len(ids))
    data = state.data if isinstance(state.data, dict) else {}
    if not data:
        try:
            data = st.run(state.aresult(raise_on_failure=False)) or {}
        except Exception:  # the summary is a convenience; the wall time is the figure
            data = {}
    outcomes: dict[str, int] = {}
    for r in data.get("results", []) if isinstance(data, dict) else []:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    return {"campaigns": len(ids), "seconds": round(wall, 1), "ms_per_campaign": round(1000 * wall / len(ids), 1),
            "cpu_s_per_campaign": cpu_per_campaign, "state": state.type.value, "outcomes": outcomes,
            "failed": len(data.get("failed", {})) if isinstance(data, dict) else None, "load_at_start": at_start}


def optimize_scaling() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with stack("optimize", receiver=False, settings_overrides={"approval_threshold_fraction": 1.0}) as st:
        out["prefect_server_db"] = st.prefect_db
        tmpl = st.new_campaigns(1, "Template")[0].id
        launched = st.run(plain_launch(st.rt, tmpl, st.video))
        template = {p["platform"]: p["post_id"] for p in st.rt.store.posts(tmpl) if p["status"] == "published"}
        out["template_posts"] = sorted(template)
        out["template_launch_s"] = round(launched["wall_s"], 2)
        runs = []
        for n in SIZES:
            started = time.perf_counter()
            ids = fill(st, n, f"Opt{n}", template)
            setup = time.perf_counter() - started
            advance_sandbox_clock(st.sandbox.url, days=1)
            runs.append({**cycle(st, ids), "setup_s": round(setup, 1)})
        out["cycles"] = runs
    sizes = np.array([r["campaigns"] for r in runs], dtype=float)
    secs = np.array([r["seconds"] for r in runs], dtype=float)
    if len(runs) >= 2:
        slope, intercept = np.polyfit(sizes, secs, 1)
        out["linear_fit"] = {"fixed_s": round(float(intercept), 1), "s_per_campaign": round(float(slope), 3)}
        if EXTRAPOLATE_TO not in sizes:  # measured directly when BENCH_OPTIMIZE_SIZES includes it
            out[f"extrapolated_{EXTRAPOLATE_TO}_campaigns_s"] = {
                "value": round(float(intercept + slope * EXTRAPOLATE_TO), 0),
                "label": f"EXTRAPOLATED from {', '.join(str(int(s)) for s in sizes)} campaigns, not measured"}
    return out


# (b) aggregation ----------------------------------------------------------------------------------
def synthetic_rows(campaigns: int, days: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ad rows (daily) and post rows (cumulative counters), shaped like the store's snapshots."""
    rng = np.random.default_rng(seed)
    n = campaigns * len(PUBLISHERS) * days
    spend = rng.gamma(2.0, 10.0, n).round(2)
    views = rng.poisson(800, n)
    engaged = rng.poisson(60, n)
    daily = rng.poisson([400, 30, 3, 5, 4], (n, 5))
    day_names = [f"2026-04-{d + 1:02d}" for d in range(days)]
    ads, posts = [], []
    i = 0
    for c in range(campaigns):
        cid = f"12000{c:08d}"
        for p in PUBLISHERS:
            cum = np.zeros(5, dtype=np.int64)
            for d in range(days):
                cum += daily[i]
                ads.append({"campaign_id": cid, "platform": p, "kind": "ad", "day": day_names[d],
                            "spend": float(spend[i]), "video_views": int(views[i]), "engagements": int(engaged[i])})
                posts.append({"campaign_id": cid, "platform": p, "kind": "post", "day": day_names[d],
                              "post_id": f"{p}-{c}", "views": int(cum[0]), "likes": int(cum[1]),
                              "comments": int(cum[2]), "shares": int(cum[3]), "saves": int(cum[4])})
                i += 1
    return ads, posts


def aggregation() -> dict[str, Any]:
    from intelligence.aggregate import aggregate

    at_start = load()
    started = time.perf_counter()
    ads, posts = synthetic_rows(AGG_CAMPAIGNS, AGG_DAYS)
    build = time.perf_counter() - started
    timings = []
    rows = 0
    for _ in range(AGG_REPEATS):
        started = time.perf_counter()
        table = aggregate(ads, posts)
        timings.append(time.perf_counter() - started)
        rows = len(table)
    del ads, posts
    one_ads, one_posts = synthetic_rows(1, AGG_DAYS, seed=1)
    aggregate(one_ads, one_posts)  # warm
    small = []
    for _ in range(50):
        started = time.perf_counter()
        aggregate(one_ads, one_posts)
        small.append((time.perf_counter() - started) * 1000)
    return {"campaigns": AGG_CAMPAIGNS, "platforms": len(PUBLISHERS), "days": AGG_DAYS,
            "input_rows_each": AGG_CAMPAIGNS * len(PUBLISHERS) * AGG_DAYS, "output_rows": rows,
            "repeats": AGG_REPEATS, "seconds_median": round(statistics.median(timings), 2),
            "seconds_all": [round(t, 2) for t in timings], "building_rows_s": round(build, 1),
            "one_campaign_ms_median": round(statistics.median(small), 1), "load_at_start": at_start}


def measure() -> dict[str, Any]:
    return {"load_at_start": load(), "setup": {
        "platform_limits": "lifted (bench.harness.BENCH_LIMITS)", "sandbox_latency_ms": 0,
        "approval_threshold_fraction": 1.0, "posts": "4 template posts shared by every campaign (see doc)"},
        "aggregation": aggregation(), "optimize_cycle": optimize_scaling(), "load_at_end": load()}


def run() -> dict[str, Any]:
    """`make bench` entry point: measure in a fresh process (see bench.harness.isolated)."""
    return isolated("optimize")


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
