"""launch-campaign under realistic platform latency: critical path, throughput, orchestration overhead.

    .venv/bin/python -m bench launch         # results in bench/results/launch.json

Every request to YouTube, TikTok, Instagram and X on the sandbox gets 200 ms of added latency
(FaultRule(kind="latency", latency_ms=200) per platform; Meta calls get none), the setting of the n8n
comparison in reference/peers.md (four platform calls of 200 ms each). A publish makes several calls
(init, upload, status polls, post), so each platform's own time is several times 200 ms, plus the
sandbox's simulated processing time (TikTok 0.6 s, Instagram 0.5 s, X 1 s, YouTube 1 s).

(a) End-to-end launch time divided by the critical path (the slowest publish task's own duration, from
    the Prefect API), one launch at a time: webhook POST -> campaign COMPLETED in the store, and the
    flow run's own duration.
(b) Throughput (campaigns completed per minute) with 1, 4 and 16 launch flows started at once
    (direct flow calls on the launcher's event loop, so the launcher's limit of 8 does not apply).
(c) Sustained launches per second through the receiver: N new-campaign webhooks from 20 concurrent
    senders (separate process), the in-process launcher at its default 8 concurrent launches; from the
    first POST to the last launch finished; every post checked on the sandbox (nothing lost or doubled).
(d) Orchestration overhead: the same launch done with plain asyncio (bench.harness.plain_launch: the
    same client `publish` coroutines under asyncio.gather, no Prefect) on fresh campaigns, interleaved
    with (a) so both see the same load.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

import httpx

from bench.harness import (
    PUBLISHERS,
    Stack,
    cpu_delta,
    first_task,
    flow_runs,
    isolated,
    load,
    plain_launch,
    send_all,
    stack,
    summary,
)

LATENCY_MS = 200
QUICK = os.environ.get("BENCH_QUICK") == "1"  # a smoke run with tiny sizes
ROUNDS = 2 if QUICK else 5  # (a) and (d)
AT_ONCE = {1: 1, 4: 1} if QUICK else {1: 2, 4: 2, 16: 1}  # (b) launches at once -> rounds
SUSTAINED = 8 if QUICK else 40  # (c) webhooks, each a new campaign (n8n's used 1,000; see README)
SENDERS = 20


def _median(values: list[float], digits: int = 3) -> float | None:
    return round(statistics.median(values), digits) if values else None


def _direct(st: Stack, ids: list[str]) -> float:
    """Run launch-campaign for each id at once on the launcher's loop; wall seconds until all finished."""
    from flows.calling import final_state
    from flows.launch_campaign import launch_campaign

    async def all_at_once() -> None:
        await asyncio.gather(*[final_state(launch_campaign, cid) for cid in ids])

    started = time.perf_counter()
    st.run(all_at_once())
    return time.perf_counter() - started


def critical_path(st: Stack) -> dict[str, Any]:
    """(a) + (d): per round, one launch by webhook, one by direct flow call, one with plain asyncio."""
    url = st.receiver_url + "/webhooks/meta"
    hooked, direct, plain = [], [], []
    at_start = load()
    for i in range(ROUNDS):
        a, b, c = (x.id for x in st.new_campaigns(3, f"Crit{i}"))
        body, headers = st.webhook(a)
        started = time.perf_counter()
        httpx.post(url, content=body, headers=headers, timeout=30).raise_for_status()
        st.wait_launched([a], every=0.01)
        hooked.append((a, time.perf_counter() - started))
        direct.append((b, _direct(st, [b])))
        plain.append(st.run(plain_launch(st.rt, c, st.video)))
    runs = flow_runs([st.flow_run_id(cid) or "" for cid, _ in hooked + direct], expect_tasks=8)

    def per_run(cid: str) -> dict[str, Any]:
        run = runs[st.flow_run_id(cid) or ""]
        publish = {t["name"].removeprefix("publish-"): t["end"] - t["start"] for t in run["tasks"]
                   if t["name"].startswith("publish-") and t["end"] is not None}
        starts = [t["start"] for t in run["tasks"] if t["name"].startswith("publish-")]
        ends = [t["end"] for t in run["tasks"] if t["name"].startswith("publish-") and t["end"] is not None]
        return {"flow_run_s": run["end"] - run["start"], "publish_s": publish,
                "critical_s": max(publish.values()), "fan_out_s": max(ends) - min(starts),
                "tasks": len(run["tasks"])}

    hooked_runs = [(per_run(cid), wall) for cid, wall in hooked]
    direct_runs = [(per_run(cid), wall) for cid, wall in direct]
    every = hooked_runs + direct_runs
    tasks_per_launch = _median([float(r["tasks"]) for r, _ in every], 1) or 8.0
    prefect_wall = [wall for _, wall in direct_runs]
    plain_wall = [p["wall_s"] for p in plain]
    task_vs_plain = {p: {"prefect_task_s": _median([r["publish_s"][p] for r, _ in every if p in r["publish_s"]]),
                         "plain_s": _median([x["publish_s"][p] for x in plain if p in x["publish_s"]])}
                     for p in PUBLISHERS}
    return {
        "rounds": ROUNDS, "load_at_start": at_start,
        "webhook_to_completed_s": _median([w for _, w in hooked_runs]),
        "direct_call_s": _median(prefect_wall),
        "flow_run_s": _median([r["flow_run_s"] for r, _ in every]),
        "critical_path_s": _median([r["critical_s"] for r, _ in every]),
        "ratio_webhook_to_completed_over_critical": _median([w / r["critical_s"] for r, w in hooked_runs], 2),
        "ratio_flow_run_over_critical": _median([r["flow_run_s"] / r["critical_s"] for r, _ in every], 2),
        "publish_task_s_by_platform": task_vs_plain,
        "overhead": {
            "plain_asyncio_launch_s": _median(plain_wall),
            "prefect_launch_s": _median(prefect_wall),
            "prefect_fan_out_s": _median([r["fan_out_s"] for r, _ in every]),
            "plain_fan_out_s": _median([p["fan_out_s"] for p in plain]),
            "task_runs_per_launch": tasks_per_launch,
            "per_task_ms": round(1000 * (statistics.median(prefect_wall) - statistics.median(plain_wall))
                                 / tasks_per_launch, 1),
            "note": "per_task_ms = (median direct flow call - median plain asyncio launch) / task runs per launch",
        },
    }


def throughput(st: Stack) -> dict[str, Any]:
    """(b) campaigns completed per minute with k launches started at once."""
    out: dict[str, Any] = {}
    for k, rounds in AT_ONCE.items():
        at_start = load()
        rates, walls, every = [], [], []
        cpu = st.cpu()
        for r in range(rounds):
            ids = [c.id for c in st.new_campaigns(k, f"Batch{k}x{r}")]
            wall = _direct(st, ids)
            completed = sum(st.rt.store.campaign_state(cid) == "COMPLETED" for cid in ids)
            walls.append(wall)
            rates.append(60 * completed / wall)
            every += ids
        flow_runs([st.flow_run_id(cid) or "" for cid in every], expect_tasks=8, timeout=60)  # server caught up
        out[str(k)] = {"rounds": rounds, "campaigns_per_minute": _median(rates, 1), "wall_s": _median(walls, 2),
                       "cpu_s_per_launch": cpu_delta(cpu, st.cpu(), per=len(every)), "load_at_start": at_start}
    return out


def sustained(st: Stack) -> dict[str, Any]:
    """(c) N new-campaign webhooks at 20 concurrent senders; launches completed per second."""
    ids = [c.id for c in st.new_campaigns(SUSTAINED, "Sustained")]
    before = {p["post_id"] for p in st.sandbox_posts()}
    at_start = load()
    cpu = st.cpu()
    results = send_all(st.receiver_url + "/webhooks/meta", [st.webhook(cid) for cid in ids], SENDERS)
    first_post = min(r["sent"] for r in results)
    done = st.wait_launched(ids, timeout=900)
    runs = flow_runs([st.flow_run_id(cid) or "" for cid in ids if st.flow_run_id(cid)], expect_tasks=1)
    ends = sorted(r["end"] for r in runs.values() if r["end"] is not None)
    cpu_per_launch = cpu_delta(cpu, st.cpu(), per=len(ids))
    first_tasks = [first_task(r, "fetch-campaign") for r in runs.values()]
    span = ends[-1] - first_post
    lo, hi = ends[len(ends) // 10], ends[(len(ends) * 9) // 10]
    posts = [p for p in st.sandbox_posts() if p["post_id"] not in before]
    expected = sum(len(st.rt.store.posts(cid)) for cid in ids)
    published = sum(p["status"] == "published" for cid in ids for p in st.rt.store.posts(cid))
    return {
        "webhooks": len(ids), "senders": SENDERS, "launcher_max_concurrent": st.launcher.max_concurrent,
        "load_at_start": at_start, "load_at_end": load(),
        "acks_ok": sum(r["status"] == 200 for r in results),
        "ack_ms": summary([r["latency_ms"] for r in results]),
        "completed": sum(st.rt.store.campaign_state(cid) == "COMPLETED" for cid in ids),
        "finished_seen": len(done),
        "launches_per_s": round(len(ends) / span, 2),
        "launches_per_s_steady_10_to_90pct": round((len(ends) * 0.8) / (hi - lo), 2) if hi > lo else None,
        "first_post_to_last_finished_s": round(span, 1),
        "cpu_s_per_launch": cpu_per_launch,
        "ceiling_launches_per_s_on_2_idle_cores": round(2 / cpu_per_launch["total"], 2),
        "post_to_fetch_campaign_running_ms": summary(
            [(t["start"] - first_post) * 1000 for t in first_tasks if t is not None]),
        "posts_on_sandbox": len(posts), "post_rows_in_store": expected, "published_rows": published,
        "nothing_lost_or_doubled": len(posts) == published == expected,
    }


def measure() -> dict[str, Any]:
    figures: dict[str, Any] = {"load_at_start": load(), "setup": {
        "sandbox_latency_ms_per_call": LATENCY_MS, "latency_on": list(PUBLISHERS),
        "video_bytes": 2 * 1024 * 1024, "platform_limits": "lifted (bench.harness.BENCH_LIMITS)"}}
    started = time.perf_counter()
    with stack("launch") as st:
        figures["stack_start_s"] = round(time.perf_counter() - started, 1)
        figures["prefect_server_db"] = st.prefect_db
        warm = [c.id for c in st.new_campaigns(2, "Warm")]  # model, clients and Prefect client warm-up
        _direct(st, warm)
        st.set_latency(LATENCY_MS)
        figures["critical_path"] = critical_path(st)
        figures["throughput_at_once"] = throughput(st)
        figures["sustained_via_receiver"] = sustained(st)
    figures["load_at_end"] = load()
    return figures


def run() -> dict[str, Any]:
    """`make bench` entry point: measure in a fresh process (see bench.harness.isolated)."""
    return isolated("launch")


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
