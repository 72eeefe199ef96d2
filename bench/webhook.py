"""Webhook receiver: acknowledge latency under concurrent senders, and webhook -> first task latency.

    .venv/bin/python -m bench webhook        # results in bench/results/webhook.json

The stack is `metacentric serve`'s (sandbox, Prefect server, in-process launcher, the receiver in a process
of its own), see bench/harness.py. Senders run in a separate process (bench.harness loadgen) with httpx.AsyncClient.

(a) Ack latency at 1, 20 and 100 concurrent senders: signed Meta `in_process_ad_objects` deliveries, a
    twentieth for new campaigns (each starts a real launch on the in-process launcher, on the same two
    cores, while the rest of the level is still being sent), the rest duplicates: half exact
    redeliveries of this level's deliveries (same bytes), half later deliveries for campaigns launched
    before. Measured twice: "with_launches" (the product as it runs) and "receiver_only" (the same
    receiver process on a store of its own that no launcher reads: the receiver + store cost alone).
(b) Webhook -> flow run start -> `fetch-campaign` task start, for single deliveries spaced out (each
    launch finishes before the next POST), read from the Prefect API; and the same figure for the new
    campaigns of each concurrency level (queued behind the launcher's concurrency limit of 8).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import httpx

from bench.harness import Stack, first_task, flow_runs, isolated, load, send_all, stack, summary

QUICK = os.environ.get("BENCH_QUICK") == "1"  # a smoke run with tiny sizes
LEVELS = (1, 20, 100)
REQUESTS = {1: 20, 20: 40, 100: 100} if QUICK else {1: 200, 20: 300, 100: 300}
NEW_FRACTION = 0.05  # each new campaign is a real launch (about 1.4 CPU-seconds on this box); see README
SPACED_LAUNCHES = 2 if QUICK else 8
WARMUP_LAUNCHES = 2 if QUICK else 3


def _outcome(result: dict[str, Any]) -> str:
    if result["status"] != 200:
        return f"http_{result['status']}"
    try:
        return str(json.loads(result["body"])["changes"][0]["outcome"])
    except (ValueError, KeyError, IndexError):
        return "unparsed"


def _mix(st: Stack, n: int, launched: list[str], seed: int) -> tuple[list[tuple[bytes, dict[str, str]]], list[str]]:
    """n deliveries: new campaigns, exact redeliveries of those, and later deliveries for launched ones."""
    rng = random.Random(seed)
    n_new = max(1, round(n * NEW_FRACTION))
    fresh = [c.id for c in st.new_campaigns(n_new, f"Hook{seed}")]
    originals = [st.webhook(cid) for cid in fresh]
    requests = list(originals)
    while len(requests) < n:
        if rng.random() < 0.5:
            requests.append(rng.choice(originals))  # Meta re-sending the very same bytes
        else:
            requests.append(st.webhook(rng.choice(launched), at=int(time.time()) + rng.randrange(1, 10**6)))
    rng.shuffle(requests)
    return requests, fresh


def _span(results: list[dict[str, Any]]) -> float:
    """Seconds from the first request sent to the last answer received (inside the sender process)."""
    return float(max(r["sent"] + r["latency_ms"] / 1000 for r in results) - min(r["sent"] for r in results))


def _ack_figures(results: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for r in results:
        key = _outcome(r)
        outcomes[key] = outcomes.get(key, 0) + 1
    return {"requests": len(results), "ack_ms": summary([r["latency_ms"] for r in results]),
            "acks_per_s": round(len(results) / wall, 1), "outcomes": outcomes}


def warm_up(st: Stack) -> list[str]:
    """A few launches first: the receiver, the launcher, the virality model and the Prefect client warm up."""
    url = st.receiver_url + "/webhooks/meta"
    warm = [c.id for c in st.new_campaigns(WARMUP_LAUNCHES, "Warm")]
    for cid in warm:
        body, headers = st.webhook(cid)
        httpx.post(url, content=body, headers=headers, timeout=30).raise_for_status()
    st.wait_launched(warm)
    return warm


def ack_with_launches(st: Stack, launched: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    url = st.receiver_url + "/webhooks/meta"
    levels: dict[str, Any] = {}
    under_load: dict[str, Any] = {}
    for concurrency in LEVELS:
        requests, fresh = _mix(st, REQUESTS[concurrency], launched, seed=concurrency)
        at_start = load()
        started = time.perf_counter()
        results = send_all(url, requests, concurrency)
        wall = _span(results)
        sent_at: dict[str, float] = {}
        for (body, _), r in zip(requests, results, strict=True):
            cid = json.loads(body)["entry"][0]["changes"][0]["value"]["id"]
            sent_at[cid] = min(sent_at.get(cid, r["sent"]), r["sent"])
        done = st.wait_launched(fresh)
        drained = time.perf_counter() - started
        levels[str(concurrency)] = {**_ack_figures(results, wall), "new_campaigns": len(fresh),
                                    "launches_finished": len(done), "seconds_until_launches_drained":
                                    round(drained, 1), "load_at_start": at_start}
        under_load[str(concurrency)] = _first_task_latency(st, {cid: sent_at[cid] for cid in fresh})
        launched += fresh
    return levels, under_load


def ack_receiver_only(st: Stack) -> dict[str, Any]:
    """The same receiver process on a store of its own that no launcher reads (no launches)."""
    from deployments.local import stop_process
    from deployments.receiver_process import start_receiver_process
    from sandbox.server import free_port

    port, nobody = free_port(), free_port()  # its doorbell rings at a port nobody listens on
    settings = st.rt.settings.model_copy(update={"database_url": f"sqlite:///{st.var_dir / 'receiver_only.db'}"})
    receiver = start_receiver_process(settings, host="127.0.0.1", port=port, doorbell_port=nobody,
                                      log_level="warning")
    url = f"http://127.0.0.1:{port}"
    try:
        pool = [c.id for c in st.new_campaigns(40, "Alone")]  # real campaign ids, never launched here
        levels: dict[str, Any] = {}
        for concurrency in LEVELS:
            rng = random.Random(100 + concurrency)
            n = REQUESTS[concurrency]
            originals = [st.webhook(rng.choice(pool), at=int(time.time()) + concurrency * 10**6 + i)
                         for i in range(max(1, round(n * NEW_FRACTION)))]
            requests = list(originals)
            while len(requests) < n:
                requests.append(rng.choice(originals))
            rng.shuffle(requests)
            at_start = load()
            results = send_all(url + "/webhooks/meta", requests, concurrency)
            levels[str(concurrency)] = {**_ack_figures(results, _span(results)),
                                        "load_at_start": at_start}
        return levels
    finally:
        stop_process(receiver, 30)


def _first_task_latency(st: Stack, posted: dict[str, float]) -> dict[str, Any]:
    """POST -> flow run created / running / fetch-campaign running / launch finished, in ms."""
    ids = {cid: st.flow_run_id(cid) for cid in posted}
    runs = flow_runs([r for r in ids.values() if r], expect_tasks=1)
    created, started, first, finished = [], [], [], []
    for cid, at in posted.items():
        run = runs.get(ids[cid] or "")
        if run is None:
            continue
        fetch = first_task(run, "fetch-campaign")
        if run["created"] is not None:
            created.append((run["created"] - at) * 1000)
        if run["start"] is not None:
            started.append((run["start"] - at) * 1000)
        if fetch is not None:
            first.append((fetch["start"] - at) * 1000)
        if run["end"] is not None:
            finished.append((run["end"] - at) * 1000)
    return {"launches": len(posted), "post_to_flow_run_created_ms": summary(created),
            "post_to_flow_run_running_ms": summary(started), "post_to_fetch_campaign_running_ms": summary(first),
            "post_to_launch_finished_ms": summary(finished)}


def spaced_first_task(st: Stack) -> dict[str, Any]:
    url = st.receiver_url + "/webhooks/meta"
    ids = [c.id for c in st.new_campaigns(SPACED_LAUNCHES, "Spaced")]
    posted: dict[str, float] = {}
    at_start = load()
    for cid in ids:
        body, headers = st.webhook(cid)
        posted[cid] = time.time()
        httpx.post(url, content=body, headers=headers, timeout=30).raise_for_status()
        st.wait_launched([cid], every=0.05)
        time.sleep(0.5)
    return {**_first_task_latency(st, posted), "load_at_start": at_start}


def measure() -> dict[str, Any]:
    figures: dict[str, Any] = {"load_at_start": load(), "setup": {
        "levels": {str(c): REQUESTS[c] for c in LEVELS}, "new_fraction": NEW_FRACTION,
        "payload": "Meta in_process_ad_objects, X-Hub-Signature-256 signed",
        "senders": "separate process, httpx.AsyncClient, keep-alive connections opened before timing",
        "launcher": "in-process, max_concurrent=8 (default)", "sandbox_latency_ms": 0,
        "platform_limits": "lifted (bench.harness.BENCH_LIMITS)"}}
    started = time.perf_counter()
    with stack("webhook") as st:
        figures["stack_start_s"] = round(time.perf_counter() - started, 1)
        figures["prefect_server_db"] = st.prefect_db
        warm = warm_up(st)
        figures["webhook_to_first_task_spaced"] = spaced_first_task(st)
        levels, under_load = ack_with_launches(st, warm)
        figures["ack_with_launches"] = levels
        figures["webhook_to_first_task_under_load"] = under_load
        figures["ack_receiver_only"] = ack_receiver_only(st)
    figures["load_at_end"] = load()
    return figures


def run() -> dict[str, Any]:
    """`make bench` entry point: measure in a fresh process (see bench.harness.isolated)."""
    return isolated("webhook")


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
