"""Shared pieces of the benchmarks: statistics, the load average, and the whole stack in one process.

`Stack` copies `metacentric serve`'s wiring (sandbox + Prefect server + runtime + in-process launcher in
this process, the receiver in its own process, deployments/receiver_process.py), with the sandbox's
platform quotas and rate windows lifted so a benchmark measures Metacentric and Prefect, not TikTok's 6
inits a minute (every lifted limit is listed in BENCH_LIMITS and reported with the figures).

`python -m bench.harness loadgen SPEC OUT` is the load generator: a separate process (so the senders do
not share the receiver's GIL) that POSTs prepared requests with N concurrent httpx.AsyncClient senders
and writes each request's send time, latency and status. `python -m bench.harness measure NAME OUT`
runs one bench's `measure()` in a fresh process (see `isolated`). Heavy imports stay inside functions
so that the load generator starts quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"

# Platform limits lifted for throughput benchmarks (the defaults follow the real platforms' documented
# limits: TikTok 6 video inits per minute and 15 posts a day, YouTube 100 inserts a day, Instagram 100
# posts a day, X 100 posts per 15 minutes, Meta 5,000 calls per hour per ad account).
BIG = 10**9
BENCH_LIMITS: dict[str, Any] = {
    "meta": {"ads_management_per_hour": BIG, "ads_insights_per_hour": BIG},
    "tiktok": {"daily_post_cap": BIG,
               "rate_limits": {k: BIG for k in ("creator_info", "video.init", "inbox.init", "status.fetch",
                                                "video.query", "video.list")}},
    "instagram": {"quota_total": BIG},
    "x": {"windows": {k: [BIG, 900] for k in ("tweets.create", "tweets.lookup", "users.me", "users.tweets",
                                               "media.initialize", "media.append", "media.finalize",
                                               "media.status", "oauth.token")},
          "user_24h": {"tweets.create": BIG}, "app_24h": {"tweets.create": BIG}},
    "youtube": {"insert_calls_per_day": BIG, "units_per_day": BIG, "channel_uploads_per_day": BIG},
}
PUBLISHERS = ("youtube", "tiktok", "instagram", "x")


# statistics -------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    """n, p50 (median), p90, p99, min, max of a sample, rounded."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(statistics.median(values), digits),
            "p90": round(percentile(values, 90), digits), "p99": round(percentile(values, 99), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def load() -> dict[str, float]:
    """The 1/5/15-minute load average (other engineers' test runs share this 2-core box)."""
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def quiet() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


# the stack --------------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: str) -> float:
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _thread_cpu(native_id: int | None) -> float:
    return _stat_cpu(f"/proc/self/task/{native_id}/stat") if native_id else float("nan")


def _pid_cpu(pid: int) -> float:
    """CPU seconds of a process and its waited-for children (uvicorn workers included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(f) for f in fields[11:15]) / _TICK  # utime, stime, cutime, cstime


def cpu_delta(before: dict[str, float], after: dict[str, float], per: int = 1) -> dict[str, float]:
    out = {k: round((after[k] - before[k]) / per, 3) for k in before}
    out["total"] = round(sum(out.values()), 3)
    return out


@dataclass
class Stack:
    """Everything the demo runs, in this process (the Prefect server is its own subprocess)."""

    var_dir: Path
    sandbox: Any  # sandbox.server.RunningSandbox
    api_url: str
    rt: Any  # metacentric.runtime.Runtime
    launcher: Any  # deployments.launcher.Launcher
    receiver_url: str = ""
    receiver_pid: int | None = None  # the receiver's own process, as `metacentric serve` runs it
    prefect_db: str = "sqlite"  # the Prefect server's database: sqlite | postgres
    video: str = ""
    _made: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    # running coroutines on the launcher's loop, where the async clients live
    def run(self, coro: Any, timeout: float = 600) -> Any:
        return self.launcher.submit(coro).result(timeout)

    # CPU time, to tell a busy box from a slow program
    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: this process (minus the sandbox's thread), the sandbox thread, the Prefect server
        and the receiver's process."""
        from prefect.server.api.server import SubprocessASGIServer

        process = resource.getrusage(resource.RUSAGE_SELF)
        sandbox = _thread_cpu(self.sandbox.thread.native_id)
        server = SubprocessASGIServer._instances.get(None)
        proc = getattr(server, "server_process", None)
        return {"metacentric": process.ru_utime + process.ru_stime - sandbox, "sandbox": sandbox,
                "prefect_server": _pid_cpu(proc.pid) if proc is not None else float("nan"),
                "receiver": _pid_cpu(self.receiver_pid) if self.receiver_pid is not None else 0.0}

    # sandbox switches
    def set_latency(self, ms: int, platforms: Sequence[str] = PUBLISHERS) -> None:
        from sandbox.faults import FaultRule

        self.sandbox.state.faults.set([FaultRule(platform=p, kind="latency", latency_ms=ms) for p in platforms])

    def clear_faults(self) -> None:
        self.sandbox.state.faults.clear()

    # campaigns
    def new_campaigns(self, n: int, prefix: str, budget: float = 100.0, concurrency: int = 16) -> list[Any]:
        """n campaigns created on Meta (the sandbox) through the Meta client, their releases in the store."""
        from models import Campaign, Creative, Platform

        start = self._made
        self._made += n
        rt = self.rt

        async def one(i: int, slots: asyncio.Semaphore) -> Any:
            name = f"{prefix} Artist {i} - {prefix} Song {i}"
            async with slots:
                cid = await rt.clients.meta.create_campaign(name, budget)
            campaign = Campaign(id=cid, name=name, artist=f"{prefix} Artist {i}", song=f"{prefix} Song {i}",
                                daily_budget=budget, creative=Creative(video_path=self.video, genre="pop"),
                                platforms=list(Platform))
            rt.store.save_campaign(campaign)
            return campaign

        async def all_of() -> list[Any]:
            slots = asyncio.Semaphore(concurrency)
            return list(await asyncio.gather(*[one(i, slots) for i in range(start, start + n)]))

        return self.run(all_of())  # type: ignore[no-any-return]

    def meta_account(self, campaign_id: str) -> str:
        return str(self.sandbox.state.ns("meta")["campaigns"][campaign_id]["account_id"])

    def webhook(self, campaign_id: str, at: int | None = None) -> tuple[bytes, dict[str, str]]:
        """Meta's signed in_process_ad_objects delivery for a campaign, byte for byte as the sandbox sends it."""
        from sandbox.meta_webhooks import signature_headers

        payload = {"object": "ad_account", "entry": [{
            "id": self.meta_account(campaign_id), "time": int(at if at is not None else time.time()),
            "changes": [{"field": "in_process_ad_objects",
                         "value": {"id": campaign_id, "level": "CAMPAIGN", "status_name": "Active"}}]}]}
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()
        return body, signature_headers(self.rt.settings.meta_webhook_app_secret.get_secret_value(), body)

    def wait_launched(self, ids: Sequence[str], timeout: float = 600, every: float = 0.1) -> dict[str, float]:
        """Wait until each campaign's launch has finished; when each was first seen finished (time.time())."""
        done: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(ids) and time.monotonic() < deadline:
            for cid in ids:
                if cid not in done and self.rt.store.campaign_state(cid) in ("COMPLETED", "FAILED"):
                    done[cid] = time.time()
            time.sleep(every)
        return done

    def flow_run_id(self, campaign_id: str) -> str | None:
        launch = self.rt.store.launch(campaign_id)
        return launch["flow_run_id"] if launch else None

    def sandbox_posts(self) -> list[dict[str, Any]]:
        import httpx

        return httpx.get(f"{self.sandbox.url}/_admin/posts", timeout=60).json()  # type: ignore[no-any-return]


def lift_client_limits(rt: Any) -> None:
    """The TikTok client keeps its own copy of TikTok's per-token windows and daily post cap (it refuses a
    call the server would refuse); lift those too, like the sandbox's (constructor options of the client)."""
    from models import Platform

    tiktok = rt.clients.publishers[Platform.TIKTOK]
    tiktok.windows.limits = {k: BIG for k in BENCH_LIMITS["tiktok"]["rate_limits"]}
    tiktok.daily_post_cap = BIG


PREFECT_DB = os.environ.get("BENCH_PREFECT_DB", "auto")  # sqlite | postgres | auto (postgres when reachable)


@contextmanager
def stack(name: str, *, receiver: bool = True, launcher_concurrency: int = 8,
          settings_overrides: dict[str, Any] | None = None, video_bytes: int = 2 * 1024 * 1024) -> Iterator[Stack]:
    """The demo's wiring with the lifted limits; everything under var/bench/<name> (removed first)."""
    quiet()
    from deployments.launcher import Launcher
    from deployments.local import stop_process
    from deployments.receiver_process import start_receiver_process
    from metacentric import runtime
    from metacentric.media import make_demo_video
    from metacentric.prefect_server import prefect_api, prefect_database
    from metacentric.settings import Settings
    from sandbox.app import SandboxConfig
    from sandbox.server import free_port, start_in_thread
    from sandbox.state import SandboxState

    var_dir = VAR / name
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    video = str(make_demo_video(var_dir / "release.mp4", size=video_bytes, seed=name))
    with (start_in_thread(SandboxState(seed=5), config=SandboxConfig(limits=BENCH_LIMITS)) as sandbox,
          prefect_database(f"metacentric_bench_{name}", PREFECT_DB) as prefect_db,
          prefect_api(var_dir / "prefect") as api_url):
        settings = Settings(var_dir=var_dir, sandbox_url=sandbox.url, **(settings_overrides or {}))
        rt = runtime.configure(settings)
        lift_client_limits(rt)
        launcher = Launcher(rt.store, poll_s=0.2, max_concurrent=launcher_concurrency, doorbell=True).start()
        receiving = None
        st = Stack(var_dir, sandbox, api_url, rt, launcher, video=video, prefect_db=prefect_db)
        try:
            if receiver:
                port = free_port()
                receiving = start_receiver_process(rt.settings, host="127.0.0.1", port=port,
                                                   doorbell_port=launcher.doorbell_port, log_level="warning")
                st.receiver_url, st.receiver_pid = f"http://127.0.0.1:{port}", receiving.pid
            yield st
        finally:
            if receiving is not None:
                stop_process(receiving, 30)
            with contextlib.suppress(Exception):  # closing is tidiness; the figures are already taken
                launcher.submit(rt.clients.aclose()).result(10)
            launcher.stop(timeout=60)
            runtime.reset()


# the same launch without Prefect ----------------------------------------------------------------------
async def plain_launch(rt: Any, campaign_id: str, video: str) -> dict[str, Any]:
    """launch-campaign's work with plain asyncio: the same client calls and store writes, no Prefect.

    Fetch from Meta, analyze, publish to the recommended platforms with asyncio.gather over the clients'
    `publish` coroutines, then set the first budget split on Meta. (The flow's report artifacts are
    Prefect's and have no counterpart here.) Returns wall seconds per phase and per platform.
    """
    from datetime import UTC, datetime

    from flows.launch_campaign import launch_decision
    from intelligence.analyze import analyze
    from models import DecisionOutcome, PublishResult, PublishStatus
    from tasks.analysis import current_model, unavailable_platforms
    from tasks.campaign import merge_campaign
    from tasks.publishing import already_done

    store, meta = rt.store, rt.clients.meta
    started = time.perf_counter()
    campaign = merge_campaign(await meta.get_campaign(campaign_id), store.get_campaign(campaign_id), rt.settings)
    store.save_campaign(campaign)
    now = datetime.now(UTC)
    analysis, features = analyze(campaign, now=now, model=current_model(store),
                                 unavailable=unavailable_platforms(store, now), immediate=True,
                                 min_platform_budget=rt.settings.min_platform_budget)
    store.save_analysis(analysis, features)
    per_platform: dict[str, float] = {}

    async def publish(plan: Any) -> Any:
        t0 = time.perf_counter()
        store.claim_post(plan.campaign_id, plan.platform.value)
        done = already_done(store, plan, datetime.now(UTC))
        if done is None:
            post = await rt.clients.publishers[plan.platform].publish(plan, video, store)
            done = PublishResult(campaign_id=plan.campaign_id, platform=plan.platform,
                                 status=PublishStatus.PUBLISHED, post_id=post.post_id, url=post.url)
            store.record_result(done)
        per_platform[plan.platform.value] = time.perf_counter() - t0
        return done

    fan_out = time.perf_counter()
    results = await asyncio.gather(*[publish(analysis.plan_for(p)) for p in analysis.recommended_platforms])
    fan_out = time.perf_counter() - fan_out
    decision = launch_decision(campaign, analysis, list(results), await meta.ad_set_budgets(campaign_id))
    if decision is not None and store.claim_decision(decision):
        await meta.ensure_ad_sets(campaign_id, [p.value for p, v in decision.after.items() if v > 0],
                                  campaign.targeting.model_dump())
        await meta.set_ad_set_budgets(campaign_id, {p.value: v for p, v in decision.after.items()})
        store.update_decision(decision.model_copy(update={"outcome": DecisionOutcome.APPLIED}))
    store.set_campaign_state(campaign_id, "COMPLETED")
    return {"wall_s": time.perf_counter() - started, "fan_out_s": fan_out, "publish_s": per_platform,
            "published": sum(r.status is PublishStatus.PUBLISHED for r in results)}


# Prefect API reads ------------------------------------------------------------------------------------
def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


async def _runs(flow_run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    out: dict[str, dict[str, Any]] = {}
    async with get_client() as client:
        for i in range(0, len(flow_run_ids), 100):
            ids = [UUID(x) for x in flow_run_ids[i:i + 100]]
            where = FlowRunFilter(id=FlowRunFilterId(any_=ids))
            flows = await client.read_flow_runs(flow_run_filter=where, limit=len(ids))
            tasks: list[Any] = []
            while True:  # the API pages at 200
                page = await client.read_task_runs(flow_run_filter=where, limit=200, offset=len(tasks))
                tasks += page
                if len(page) < 200:
                    break
            for fr in flows:
                out[str(fr.id)] = {"created": _ts(fr.created), "start": _ts(fr.start_time),
                                   "end": _ts(fr.end_time), "state": fr.state_type.value if fr.state_type else None,
                                   "tasks": []}
            for tr in tasks:
                row = out.get(str(tr.flow_run_id))
                if row is not None:
                    row["tasks"].append({"name": tr.name, "start": _ts(tr.start_time), "end": _ts(tr.end_time),
                                         "state": tr.state_type.value if tr.state_type else None})
    return out


def flow_runs(flow_run_ids: Sequence[str], expect_tasks: int = 1, timeout: float = 120) -> dict[str, dict[str, Any]]:
    """Flow and task run timings (epoch seconds) from the Prefect API, waiting for the server to record them.

    Task runs reach the server as events, a little after they happen; wait until every run has at
    least `expect_tasks` finished task runs (or the timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        runs = asyncio.run(_runs(flow_run_ids))
        ready = [r for r in runs.values()
                 if r["end"] is not None and sum(t["end"] is not None for t in r["tasks"]) >= expect_tasks]
        if len(ready) >= len(flow_run_ids) or time.monotonic() > deadline:
            return runs
        time.sleep(1.0)


def first_task(run: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    found = [t for t in run["tasks"] if t["name"].startswith(prefix) and t["start"] is not None]
    return min(found, key=lambda t: t["start"]) if found else None


# the load generator -----------------------------------------------------------------------------------
def send_all(url: str, requests: Sequence[tuple[bytes, dict[str, str]]], concurrency: int,
             timeout: float = 600) -> list[dict[str, Any]]:
    """POST every request with `concurrency` senders in a separate process; per-request results in order."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"url": url, "concurrency": concurrency,
                                    "requests": [{"body": b.decode(), "headers": h} for b, h in requests]}))
        subprocess.run([sys.executable, "-m", "bench.harness", "loadgen", str(spec), str(out)], check=True,
                       cwd=ROOT, timeout=timeout)
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def _http_request(method: str, host: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _http_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _loadgen(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """N senders, each on its own keep-alive HTTP/1.1 connection (opened before timing), writing
    pre-built requests and reading Content-Length responses over asyncio streams.

    Deliberately not an HTTP client library: with httpx the load generator spent more CPU per request than
    the receiver it measured (one shared client with 100 connections: ~15 ms per request in httpcore's pool
    bookkeeping; one client per sender: still more than the receiver), and on two cores that CPU is taken
    from the receiver.
    """
    from urllib.parse import urlsplit

    url, concurrency = urlsplit(spec["url"]), int(spec["concurrency"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    prepared = [_http_request("POST", url.netloc, url.path, r["body"].encode(), r["headers"]) for r in spec["requests"]]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(prepared)):
        queue.put_nowait(i)
    results: list[dict[str, Any]] = [{} for _ in prepared]
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    for reader, writer in connections:  # each connection used once before timing
        writer.write(_http_request("GET", url.netloc, "/healthz"))
        await _http_response(reader)

    async def sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            sent = time.time()
            started = time.perf_counter()
            try:
                writer.write(prepared[i])
                status, body = await _http_response(reader)
            except (OSError, asyncio.IncompleteReadError) as exc:
                status, body = 0, type(exc).__name__.encode()
            results[i] = {"sent": sent, "latency_ms": (time.perf_counter() - started) * 1000,
                          "status": status, "body": body[:300].decode(errors="replace")}
            if status == 0:  # the connection broke: a new one for the next request
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)

    try:
        await asyncio.gather(*[sender(r, w) for r, w in connections])
    finally:
        for _, writer in connections:
            writer.close()
    return results


# one bench, one process -------------------------------------------------------------------------------
def isolated(name: str, timeout: float = 1800) -> dict[str, Any]:
    """Run bench.<name>.measure() in a fresh interpreter and return its figures.

    Each stack bench gets its own process: Prefect's process-wide services (the events worker, API
    clients) stay bound to the first Prefect server a process talks to, the platform clients' token locks
    (platforms/tokens.py) to the first event loop, and one bench's memory and threads must not weigh on
    the next one's figures.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        subprocess.run([sys.executable, "-m", "bench.harness", "measure", name, str(out)], cwd=ROOT, check=True,
                       timeout=timeout)
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def _main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "measure":
        import importlib

        figures = importlib.import_module(f"bench.{argv[1]}").measure()
        Path(argv[2]).write_text(json.dumps(figures, default=str))
        return 0
    if len(argv) == 3 and argv[0] == "loadgen":
        spec = json.loads(Path(argv[1]).read_text())
        Path(argv[2]).write_text(json.dumps(asyncio.run(_loadgen(spec))))
        return 0
    print("usage: python -m bench.harness (loadgen SPEC.json | measure NAME) OUT.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
