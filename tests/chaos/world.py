"""One whole Metacentric deployment in this process, for the chaos suite.

Wired the way `metacentric demo` wires it: a sandbox of its own (so its limits and credentials can differ
from the session sandbox), the store, the runtime, the in-process launcher and the receiver on a loopback
port, all talking to the session's Prefect test server. The launcher's flow runs carry a tag unique to the
world, so Prefect checks only see this world's runs even when other tests share the server.

Quotas are raised on both sides (the sandbox's limits and the clients' own copies of them) because the
chaos suite tests "nothing twice, nothing lost", not quota handling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.sorting import FlowRunSort
from sqlalchemy import select

from deployments.launcher import Launcher
from deployments.local import start_receiver, stop_process, wait_healthy
from deployments.receiver import create_receiver
from metacentric import runtime as runtime_module
from metacentric.media import make_demo_video
from metacentric.runtime import Runtime
from metacentric.settings import Settings
from metacentric.tables import LaunchRow
from models import Campaign, Creative, Platform, Targeting
from platforms.tiktok_wire import CallWindows
from sandbox.app import SandboxConfig
from sandbox.faults import FaultRule
from sandbox.server import RunningSandbox, free_port, start_in_thread
from sandbox.state import SandboxState
from sandbox.tiktok_rules import RATE_LIMITS as TIKTOK_RATE_LIMITS
from sandbox.x_rules import DEFAULT_LIMITS as X_DEFAULT_LIMITS

PLATFORMS = ("youtube", "tiktok", "instagram", "x")
BIG = 10**7
# Short X rate windows: a throttled answer says "come back when the window turns over", and the chaos
# suite wants that to be seconds, not X's 15 minutes.
X_WINDOW_S = 5

RAISED_LIMITS: dict[str, Any] = {
    "meta": {"ads_management_per_hour": BIG, "ads_insights_per_hour": BIG, "in_process_s": 0.0},
    "tiktok": {"daily_post_cap": BIG, "rate_limits": {k: BIG for k in TIKTOK_RATE_LIMITS}},
    "instagram": {"quota_total": BIG},
    "youtube": {"insert_calls_per_day": BIG, "units_per_day": BIG, "channel_uploads_per_day": BIG},
    "x": {"windows": {k: [BIG, X_WINDOW_S] for k in X_DEFAULT_LIMITS["windows"]},
          "user_24h": {"tweets.create": BIG}, "app_24h": {"tweets.create": BIG}},
}

# Endpoints each platform's publish path calls, by the sandbox's fault names. OAuth token endpoints are
# left out on purpose: TikTok and X rotate refresh tokens, so a lost refresh answer kills the account for
# good (a person must re-authorise), which is permanent by design and not what this suite is about.
PUBLISH_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "youtube": ("videos.insert", "upload.chunk", "upload.status", "videos.list"),
    "tiktok": ("creator_info", "video.init", "upload.chunk", "status.fetch", "video.list"),
    "instagram": ("publishing_limit", "media.create", "rupload", "container.status", "media_publish",
                  "media.list", "media.get"),
    "x": ("media.initialize", "media.append", "media.finalize", "media.status", "tweets.create", "users.me",
          "users.tweets"),
}
FAULT_KINDS = ("transient", "rate_limit", "ambiguous", "drop_connection")


def fault_plan(rate: float = 0.2, kinds: Iterable[str] = FAULT_KINDS, tiktok_rate_limits: int = 1) -> list[FaultRule]:
    """Every publish endpoint of every platform faults with probability `rate`, split evenly over `kinds`.

    `pick()` tries rules in order, so k rules of probability p fault a request with 1-(1-p)^k; p is
    chosen so that this is `rate`. TikTok's 429 is the exception: the real TikTok sends no Retry-After,
    so after one the client holds that endpoint for a whole minute, for every post in the process (a
    sliding one-minute window). At 5 % of requests that would hold every TikTok post all the time, so
    TikTok gets `tiktok_rate_limits` 429s in all, on status.fetch (mid-publish, the interesting place).
    """
    kinds = tuple(kinds)
    p = 1 - (1 - rate) ** (1 / len(kinds))
    rules = []
    for platform, endpoints in PUBLISH_ENDPOINTS.items():
        for endpoint in endpoints:
            for kind in kinds:
                if (platform, kind) != ("tiktok", "rate_limit"):
                    rules.append(FaultRule(platform=platform, endpoint=endpoint, kind=kind, rate=p))
    if "rate_limit" in kinds and tiktok_rate_limits:
        rules.append(FaultRule(platform="tiktok", endpoint="status.fetch", kind="rate_limit", rate=p,
                               count=tiktok_rate_limits))
    return rules


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(account: str, change: dict[str, Any], when: int) -> bytes:
    return json.dumps({"object": "ad_account",
                       "entry": [{"id": account, "time": when, "changes": [change]}]}).encode()


def launch_change(campaign_id: str) -> dict[str, Any]:
    return {"field": "in_process_ad_objects",
            "value": {"id": campaign_id, "level": "CAMPAIGN", "status_name": "ACTIVE"}}


def edit_change(campaign_id: str) -> dict[str, Any]:
    return {"field": "field_changed",
            "value": {"object_type": "campaign", "object_id": campaign_id, "field": "daily_budget"}}


@dataclass
class Delivery:
    campaign_id: str
    body: bytes
    kind: str  # "first", "redelivery" (same bytes again) or "other-event" (another event, same campaign)


def deliveries_for(campaign_ids: list[str], account: str, *, duplicate_fraction: float,
                   rng: random.Random) -> list[Delivery]:
    """One launch webhook per campaign; `duplicate_fraction` of them come again, then all are shuffled.

    A duplicate is either Meta re-sending the very same bytes (its retry after a slow answer) or a second,
    different event naming the same campaign (field_changed): both must not launch anything again.
    """
    out: list[Delivery] = []
    base = int(time.time())
    for i, cid in enumerate(campaign_ids):
        first = Delivery(cid, webhook_body(account, launch_change(cid), base + i), "first")
        out.append(first)
        if rng.random() < duplicate_fraction:
            if rng.random() < 0.5:
                out.append(Delivery(cid, first.body, "redelivery"))
            else:
                out.append(Delivery(cid, webhook_body(account, edit_change(cid), base + i + 1), "other-event"))
    rng.shuffle(out)
    return out


@dataclass
class Agreement:
    """What the store, the sandbox and Prefect say happened; `problems` lists every disagreement."""

    campaigns: int
    posts_in_store: dict[str, int]
    posts_on_platforms: dict[str, int]
    flow_runs: int
    problems: list[str] = field(default_factory=list)


@dataclass
class World:
    sandbox: RunningSandbox | ProcessSandbox
    rt: Runtime
    launcher: Launcher
    receiver_url: str
    tag: str
    video: Path
    webhook_secret: str
    reconciled: Counter[str] = field(default_factory=Counter)  # campaign -> re-runs that ran
    failed_reruns: Counter[str] = field(default_factory=Counter)  # campaign -> re-runs Prefect refused
    rerun_errors: list[str] = field(default_factory=list)
    reconcile_passes: int = 0
    pass_log: list[tuple[int, float]] = field(default_factory=list)  # (campaigns re-run, seconds) per pass

    # setup -------------------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.rt.settings.meta_ad_account_id

    def create_campaigns(self, n: int, prefix: str) -> list[str]:
        """n campaigns on Meta (the sandbox) with their releases registered in the store.

        Created straight through the Graph API: campaign creation is not under test, and the client's
        look-up-by-name before each create would make 500 creations quadratic.
        """
        s = self.rt.settings
        ids: list[str] = []
        with httpx.Client(base_url=f"{s.meta_graph_url}/{s.meta_api_version}", timeout=30) as http:
            for i in range(n):
                artist, song = f"{prefix} Artist {i:04d}", f"Song {uuid.uuid4().hex[:8]}"
                name = f"{artist} - {song}"
                r = http.post(f"/act_{self.account}/campaigns", data={
                    "name": name, "objective": "OUTCOME_ENGAGEMENT", "status": "ACTIVE",
                    "special_ad_categories": "[]", "daily_budget": str(100 * (50 + i % 100)),
                    "access_token": s.meta_access_token.get_secret_value()})
                r.raise_for_status()
                cid = str(r.json()["id"])
                self.rt.store.save_campaign(Campaign(
                    id=cid, name=name, artist=artist, song=song, daily_budget=50 + i % 100,
                    targeting=Targeting(countries=["US"]), creative=Creative(video_path=str(self.video)),
                    platforms=list(Platform)))
                ids.append(cid)
        return ids

    def set_faults(self, rules: list[FaultRule]) -> None:
        httpx.put(f"{self.sandbox.url}/_admin/faults", json=[r.model_dump() for r in rules],
                  timeout=10).raise_for_status()

    def fired_faults(self) -> Counter[str]:
        rules = httpx.get(f"{self.sandbox.url}/_admin/faults", timeout=10).json()
        fired: Counter[str] = Counter()
        for r in rules:
            fired[f"{r['platform']}:{r['kind']}"] += r["fired"]
        return fired

    # the receiver ------------------------------------------------------------------------------------
    async def deliver(self, deliveries: list[Delivery], concurrency: int = 16) -> Counter[str]:
        """POST each signed delivery to the receiver, `concurrency` at a time; count the outcomes."""
        outcomes: Counter[str] = Counter()
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.receiver_url, timeout=60) as http:
            async def one(d: Delivery) -> None:
                async with slots:
                    r = await http.post("/webhooks/meta", content=d.body, headers={
                        "content-type": "application/json",
                        "x-hub-signature-256": sign(self.webhook_secret, d.body)})
                    assert r.status_code == 200, (r.status_code, r.text)
                    for change in r.json()["changes"]:
                        outcomes[f"{d.kind}:{change['outcome']}"] += 1
            await asyncio.gather(*(one(d) for d in deliveries))
        return outcomes

    def launched(self) -> set[str]:
        """Campaigns with a launch row (one query: this is polled while hundreds of launches run)."""
        with self.rt.store.session() as s:
            return set(s.scalars(select(LaunchRow.campaign_id)))

    def wait_for_launches(self, campaign_ids: list[str], timeout_s: float) -> list[str]:
        """Wait until every campaign's launch delivery was handed over (its flow run finished in-process)."""
        wanted = set(campaign_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            pending = {d["campaign_id"] for d in self.rt.store.deliveries(status="received")
                       if d["kind"] == "launch"} & wanted
            unlaunched = wanted - self.launched()
            if (not pending and not unlaunched) or time.monotonic() > deadline:
                return sorted(pending | unlaunched)
            time.sleep(2.0)

    # reconcile: the product's answer to a platform whose retries ran out is re-running the launch ----------
    def incomplete(self, campaign_ids: list[str]) -> dict[str, list[str]]:
        """Campaigns with a chosen platform that is not published yet, and those platforms."""
        out: dict[str, list[str]] = {}
        for cid in campaign_ids:
            analysis = self.rt.store.latest_analysis(cid)
            if analysis is None:
                out[cid] = ["(no analysis)"]
                continue
            posts = {p["platform"]: p for p in self.rt.store.posts(cid)}
            missing = [p.value for p in analysis.recommended_platforms
                       if posts.get(p.value, {}).get("status") != "published"]
            if missing:
                out[cid] = missing
        return out

    def describe(self, left: dict[str, list[str]]) -> list[str]:
        """Why each of these platforms is not published, from the store (for failure messages)."""
        lines = []
        for cid, platforms in sorted(left.items()):
            posts = {p["platform"]: p for p in self.rt.store.posts(cid)}
            for name in platforms:
                row = posts.get(name) or {}
                lines.append(f"{cid}/{name}: {row.get('status')} after {row.get('attempts')} attempts: "
                             f"{row.get('error')}; intent {row.get('intent')}")
        return lines

    def reconcile(self, campaign_ids: list[str], *, max_passes: int = 8, concurrency: int = 8,
                  timeout_s: float = 600) -> dict[str, list[str]]:
        """Re-run launch-campaign for every campaign with a platform left unpublished, pass after pass."""
        from flows.calling import final_state
        from flows.launch_campaign import launch_campaign

        async def rerun_all(ids: list[str]) -> None:
            slots = asyncio.Semaphore(concurrency)

            async def one(cid: str) -> None:
                async with slots:
                    with tags(self.tag):  # submit() runs this in the caller's context, not the launcher's
                        try:
                            await final_state(launch_campaign, cid)
                        except Exception as exc:  # e.g. Prefect's server answering 503 under load
                            self.failed_reruns[cid] += 1
                            self.rerun_errors.append(f"{cid}: {type(exc).__name__}: {exc}"[:300])
                        else:
                            self.reconciled[cid] += 1

            await asyncio.gather(*(one(cid) for cid in ids))

        left = self.incomplete(campaign_ids)
        for _ in range(max_passes):
            if not left:
                break
            self.reconcile_passes += 1
            started = time.monotonic()
            self.launcher.submit(rerun_all(sorted(left))).result(timeout_s)
            self.pass_log.append((len(left), round(time.monotonic() - started, 1)))
            left = self.incomplete(campaign_ids)
        return left

    # agreement ---------------------------------------------------------------------------------------
    def sandbox_posts(self) -> list[dict[str, Any]]:
        posts = httpx.get(f"{self.sandbox.url}/_admin/posts", timeout=60).json()
        # X lists a thread's replies too; the campaign's post is the thread's first one.
        return [p for p in posts if p["platform"] != "x" or p["post_id"] == p["thread_root"]]

    async def flow_runs(self) -> list[Any]:
        runs: list[Any] = []
        async with get_client() as client:
            while True:
                page = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[self.tag])),
                    sort=FlowRunSort.START_TIME_ASC, limit=200, offset=len(runs))
                runs.extend(page)
                if len(page) < 200:
                    return runs

    async def agreement(self, campaign_ids: list[str], *, via_webhook: bool = True) -> Agreement:
        """Store vs sandbox vs Prefect: one launch, one post per chosen platform, nothing twice, nothing lost.

        `via_webhook`: each launch came through the receiver (one delivery claimed it, one flow run from
        the launcher). Otherwise a killed worker ran it first: that run may or may not exist in Prefect.
        """
        store = self.rt.store
        problems: list[str] = []
        on_platforms = self.sandbox_posts()
        by_platform: dict[str, Counter[str]] = {p: Counter() for p in PLATFORMS}
        for p in on_platforms:
            by_platform[p["platform"]][p["post_id"]] += 1
        in_store: dict[str, Counter[str]] = {p: Counter() for p in PLATFORMS}
        for cid in campaign_ids:
            analysis = store.latest_analysis(cid)
            if analysis is None:
                problems.append(f"{cid}: never analysed (not launched)")
                continue
            posts = {p["platform"]: p for p in store.posts(cid)}
            chosen = {p.value for p in analysis.recommended_platforms}
            if not chosen:
                problems.append(f"{cid}: no platform chosen")
            for name in sorted(set(posts) - chosen):
                problems.append(f"{cid}/{name}: a post row for a platform that was not chosen")
            for name in sorted(chosen):
                row = posts.get(name)
                if row is None or row["status"] != "published" or not row["post_id"]:
                    problems.append(f"{cid}/{name}: not published in the store "
                                    f"({row and row['status']}: {row and row['error']})")
                    continue
                in_store[name][row["post_id"]] += 1
                if by_platform[name][row["post_id"]] != 1:
                    problems.append(f"{cid}/{name}: post {row['post_id']} is on the platform "
                                    f"{by_platform[name][row['post_id']]} times")
            if store.campaign_state(cid) != "COMPLETED":
                problems.append(f"{cid}: campaign state {store.campaign_state(cid)}")
        for name in PLATFORMS:
            extra = set(by_platform[name]) - set(in_store[name])
            if extra:  # a post the store does not know: published twice, or lost to the store
                problems.append(f"{name}: {len(extra)} post(s) on the platform that the store does not know: "
                                f"{sorted(extra)[:5]}")
            twice = [pid for pid, n in in_store[name].items() if n > 1]
            if twice:
                problems.append(f"{name}: post ids claimed by two campaigns: {twice[:5]}")

        # One launch row per campaign, claimed by a webhook delivery; one launch delivery per campaign.
        launch_deliveries = Counter(d["campaign_id"] for d in store.deliveries() if d["kind"] == "launch")
        runs = await self.flow_runs()
        runs_by_campaign: dict[str, list[Any]] = {}
        for run in runs:
            runs_by_campaign.setdefault(str(run.parameters.get("campaign_id")), []).append(run)
        for cid in campaign_ids:
            launch = store.launch(cid)
            if launch is None:
                problems.append(f"{cid}: no launch row")
                continue
            if via_webhook and launch_deliveries[cid] != 1:
                problems.append(f"{cid}: {launch_deliveries[cid]} deliveries claimed the launch")
            mine = runs_by_campaign.get(cid, [])
            # A re-run that Prefect refused may or may not have created its run before the refusal.
            low = self.reconciled[cid] + (1 if via_webhook else 0)
            expected = set(range(low, 1 + self.reconciled[cid] + self.failed_reruns[cid] + 1))
            if len(mine) not in expected:
                problems.append(f"{cid}: {len(mine)} flow runs in Prefect, expected {sorted(expected)} "
                                f"(the launch + {self.reconciled[cid]} reconcile)")
            run_ids = [str(r.id) for r in mine]
            if mine and launch["flow_run_id"] not in run_ids:
                problems.append(f"{cid}: the launch row names flow run {launch['flow_run_id']}, which Prefect "
                                f"does not have ({run_ids})")
            elif mine and launch["flow_run_id"] != run_ids[0]:
                # Only a run killed after Prefect created it and before its first line recorded it may come
                # first without being named; such a run never completed.
                earlier = mine[:run_ids.index(launch["flow_run_id"])]
                if any(r.state is not None and r.state.is_completed() for r in earlier):
                    problems.append(f"{cid}: the launch row names flow run {launch['flow_run_id']}, but an "
                                    f"earlier run completed: {run_ids}")
            if mine and not mine[-1].state.is_completed():
                problems.append(f"{cid}: the last flow run ended {mine[-1].state.type.value}: "
                                f"{mine[-1].state.message}")
        stray = set(runs_by_campaign) - set(campaign_ids)
        if stray:
            problems.append(f"flow runs for campaigns that were not created here: {sorted(stray)[:5]}")
        return Agreement(
            campaigns=len(campaign_ids),
            posts_in_store={p: sum(c.values()) for p, c in in_store.items()},
            posts_on_platforms={p: sum(c.values()) for p, c in by_platform.items()},
            flow_runs=len(runs), problems=problems)


def relax_client_limits(rt: Runtime) -> None:
    """The TikTok client keeps its own copy of the daily cap and per-minute windows: raise them as well."""
    tiktok: Any = rt.clients.publishers[Platform.TIKTOK]
    tiktok.daily_post_cap = BIG
    tiktok.windows = CallWindows({k: BIG for k in TIKTOK_RATE_LIMITS})


FIGURES_DIR = Path(__file__).resolve().parents[2] / "var" / "chaos"


def keep_figures(name: str, figures: dict[str, Any]) -> None:
    """Print a run's figures and keep them in var/chaos/<name>.json (pytest hides a passing test's output)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    record = {"test": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "figures": figures}
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"\n{name}: {figures}")


@dataclass
class ProcessSandbox:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def sandbox_in_process(config: SandboxConfig, seed: int) -> Iterator[ProcessSandbox]:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.sandbox_process", str(port), str(seed),
                             json.dumps(dataclasses.asdict(config))], cwd=root)
    sandbox = ProcessSandbox(f"http://127.0.0.1:{port}", proc)
    try:
        wait_healthy(sandbox.url, process=proc)
        yield sandbox
    finally:
        stop_process(proc)


@contextmanager
def running_world(var_dir: Path, *, settings: dict[str, Any] | None = None,
                  sandbox_config: SandboxConfig | None = None, max_concurrent: int = 8,
                  video_size: int = 300_000, seed: int = 5, separate_sandbox: bool = False) -> Iterator[World]:
    """Sandbox + store + runtime + launcher + receiver, torn down afterwards. Needs a Prefect API.

    `separate_sandbox`: run the sandbox in its own process (then `world.sandbox` has only `.url`).
    """
    config = sandbox_config or SandboxConfig(limits=RAISED_LIMITS)
    tag = f"chaos-{uuid.uuid4().hex[:10]}"
    starting = (sandbox_in_process(config, seed) if separate_sandbox
                else start_in_thread(SandboxState(seed=seed), config=config))
    with starting as sandbox:
        rt = runtime_module.configure(Settings(var_dir=var_dir, sandbox_url=sandbox.url, **(settings or {})))
        relax_client_limits(rt)
        with tags(tag):  # the launcher thread copies this context: its flow runs carry the tag
            launcher = Launcher(rt.store, max_concurrent=max_concurrent).start()  # polls each second, as serve does
        url, server = start_receiver(create_receiver(rt.settings, rt.store, launcher, rt.clients.meta),
                                     name="chaos-receiver")
        world = World(sandbox=sandbox, rt=rt, launcher=launcher, receiver_url=url, tag=tag,
                      video=make_demo_video(var_dir / "release.mp4", size=video_size, seed=tag),
                      webhook_secret=rt.settings.meta_webhook_app_secret.get_secret_value())
        try:
            yield world
        finally:
            server.should_exit = True
            launcher.submit(rt.clients.aclose()).result(30)
            launcher.stop()
            runtime_module.reset()
