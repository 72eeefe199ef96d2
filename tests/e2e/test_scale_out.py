"""The scale-out layout, for real: a Prefect server on PostgreSQL, the store on PostgreSQL, two process
workers on one work pool (deployed from prefect.yaml with `prefect deploy`), and the receiver handing
deliveries to the `launch-campaign` deployment. 50 campaigns go in through the receiver; each must be
launched exactly once, by one of the two workers, with nothing published twice.

Marked `scale` (deselected by default): `.venv/bin/pytest -m scale tests/e2e/test_scale_out.py`.
Skips when PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres, trust auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.launcher import DEPLOYMENT_NAME
from intelligence.virality import ViralityModel
from metacentric import runtime as runtime_module
from metacentric.media import make_demo_video
from metacentric.settings import Settings
from sandbox.server import RunningSandbox, free_port, start_in_thread
from sandbox.state import SandboxState
from tests.e2e.conftest import live_receiver_for, meta_change, percentile, sandbox_posts, sign, video_sha256

pytestmark = pytest.mark.scale

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG = "postgresql://postgres@127.0.0.1:5432"
POOL = "metacentric-process"  # the work pool prefect.yaml names
WORKERS = ("scale-worker-a", "scale-worker-b")
N_CAMPAIGNS = 50


# processes -------------------------------------------------------------------------------------------
@dataclass
class Started:
    """Every process this module starts, each in its own session; all are ended by pid at teardown."""

    marker: str  # an environment value only our processes (and the flow runs they spawn) carry
    logs: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "METACENTRIC_", "META_WEBHOOK_"))}
        return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "METACENTRIC_SCALE_TEST": self.marker, **extra}

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout_s: float = 180) -> None:
        done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
        (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        # A worker that has run flows ignores the first SIGTERM (prefect_notes): SIGTERM twice, then SIGKILL.
        for _name, proc in reversed(self.procs):
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    continue
        for pid in self._strays():  # flow-run processes start their own sessions; find them by our marker
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _strays(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if f"METACENTRIC_SCALE_TEST={self.marker}".encode() in (entry / "environ").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: the process exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout_s}s:\n{log.read_text()[-3000:]}")


# PostgreSQL ------------------------------------------------------------------------------------------
def postgres() -> Any:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is in the dev extra: pip install -e '.[dev]'")
    try:
        return psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 as user postgres ({exc}); "
                    "the scale-out test needs it for the Prefect server and the store")


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases: the Prefect server's and the store's; dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    names = (f"metacentric_scale_{tag}_prefect", f"metacentric_scale_{tag}_store")
    with postgres() as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with postgres() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Layout:
    api_url: str
    store_url: str
    sandbox: RunningSandbox
    var_dir: Path
    started: Started


@pytest.fixture(scope="module")
def layout(databases: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    prefect_db, store_db = databases
    root = tmp_path_factory.mktemp("scale")
    started = Started(marker=root.name + uuid.uuid4().hex[:8], logs=root)
    store_url = f"{PG}/{store_db}"
    with start_in_thread(SandboxState(seed=5)) as sandbox:
        try:
            port = free_port()
            api_url = f"http://127.0.0.1:{port}/api"
            server_env = started.env(
                PREFECT_HOME=str(root / "server-home"), PREFECT_UI_ENABLED="false",
                PREFECT_SERVER_DATABASE_CONNECTION_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefect_db}")
            server = started.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                                      "--port", str(port)], server_env)
            wait_http(f"{api_url}/health", server, root / "prefect-server.log")

            # The commands at the top of prefect.yaml, as an operator runs them from the repository root.
            cli_env = started.env(PREFECT_API_URL=api_url, PREFECT_HOME=str(root / "cli-home"),
                                  METACENTRIC_HOME=str(REPO))
            started.run("work-pool", [str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
                        cli_env)
            started.run("deploy", [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "launch-campaign"],
                        cli_env)

            for name in WORKERS:
                worker_env = started.env(
                    PREFECT_API_URL=api_url, PREFECT_HOME=str(root / f"{name}-home"),
                    PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RUNNER_POLL_FREQUENCY="1",
                    PREFECT_LOGGING_LEVEL="INFO",  # the worker's "submitting flow run" line goes to the API
                    METACENTRIC_MODE="sandbox", METACENTRIC_SANDBOX_URL=sandbox.url,
                    METACENTRIC_DATABASE_URL=store_url, METACENTRIC_HOME=str(REPO),
                    METACENTRIC_VAR_DIR=str(root / f"{name}-var"))
                started.start(name, [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name,
                                     "--limit", "4"], worker_env)
            yield Layout(api_url, store_url, sandbox, root / "receiver-var", started)
        finally:
            started.stop_all()


async def flow_runs_of_deployment(deployment_id: Any) -> list[Any]:
    async with get_client() as client:
        runs: list[Any] = []
        while page := await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                limit=200, offset=len(runs)):
            runs.extend(page)
        return runs


async def workers_by_run(event: str, expected: int, timeout_s: float = 60) -> dict[str, list[str]]:
    """flow run id -> names of the workers that emitted `event` for it (Prefect's own events, read back from
    the API; the server persists events asynchronously, so wait until `expected` runs have one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, list[str]] = {}
        async with get_client() as client:
            page = await client.read_events(EventFilter(event=EventNameFilter(name=[event])), limit=50)
            while True:
                for e in page.events:
                    for related in e.related:
                        if related.role == "flow-run":
                            found.setdefault(related.id.removeprefix("prefect.flow-run."), []).append(
                                e.resource["prefect.resource.name"])
                if not page.next_page:
                    break
                page = await client.read_events_page(str(page.next_page))
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1)


async def test_50_campaigns_through_the_receiver_each_launch_once_on_one_of_two_workers(
        layout: Layout, virality_model: ViralityModel, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(var_dir=layout.var_dir, sandbox_url=layout.sandbox.url, database_url=layout.store_url)
    rt = runtime_module.configure(settings)
    m = virality_model  # the promoted model, as after the first launch (a fresh install trains one on first use)
    rt.store.save_model(m.version, m.source, m.metrics, m.to_blob(), promoted=True)
    videos = [make_demo_video(layout.var_dir / "videos" / f"{n}.mp4", size=300_000, seed=f"scale-{n}")
              for n in range(N_CAMPAIGNS)]
    try:
        with temporary_settings(updates={PREFECT_API_URL: layout.api_url}):
            async with get_client() as client:
                deployment = await client.read_deployment_by_name(DEPLOYMENT_NAME)
            with live_receiver_for(rt, layout.sandbox, mode="deployment") as r:
                started = time.monotonic()
                limits = httpx.Limits(max_connections=N_CAMPAIGNS)
                async with httpx.AsyncClient(base_url=r.url, timeout=120, limits=limits) as http:
                    answers = await asyncio.gather(*(http.post(
                        "/campaigns/create-with-orchestration",
                        headers={"authorization": f"Bearer {r.api_token}"},
                        json={"name": f"Scale Artist {n} - Song {n}", "daily_budget": 40 + n,
                              "artist_name": f"Scale Artist {n}", "song_name": f"Song {n}",
                              "creative": {"video_path": str(videos[n])}}) for n in range(N_CAMPAIGNS)))
                    assert [a.status_code for a in answers] == [200] * N_CAMPAIGNS, [a.text for a in answers]
                    assert all(a.json()["launch"] == {"status": "started"} for a in answers)
                    ids = [a.json()["campaign"]["id"] for a in answers]
                    assert len(set(ids)) == N_CAMPAIGNS

                    # Re-deliveries of every campaign (Meta's webhook and the seed's) change nothing.
                    dupes = [("/webhooks/meta", meta_change(c)) for c in ids] + [
                        ("/webhook/campaign-created", json.dumps({"campaign_id": c}).encode()) for c in ids]
                    again = await asyncio.gather(*(http.post(p, content=b, headers=sign(r.secret, b))
                                                   for p, b in dupes))
                    assert {x.status_code for x in again} == {200}
                    assert "launch" not in json.dumps([x.json() for x in again])

                    deadline = time.monotonic() + 900
                    while not all(rt.store.campaign_state(c) in ("COMPLETED", "FAILED") for c in ids):
                        assert time.monotonic() < deadline, "timed out waiting for 50 launches"
                        await asyncio.sleep(1)
                    elapsed = time.monotonic() - started
                    statuses = {c: (await http.get(f"/campaigns/{c}")).json() for c in ids}
            runs = await flow_runs_of_deployment(deployment.id)
            executed_by = await workers_by_run("prefect.worker.executed-flow-run", len(runs))
            submitted_by = await workers_by_run("prefect.worker.submitted-flow-run", len(runs))
            async with get_client() as client:
                detailed = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[run.id for run in runs])), limit=200)
    finally:
        runtime_module.reset()

    assert {c: s["state"] for c, s in statuses.items()} == dict.fromkeys(ids, "COMPLETED")
    # Exactly one run of the deployment per campaign, each completed, each the one the store recorded.
    assert Counter(run.parameters["campaign_id"] for run in runs) == Counter(ids)
    assert all(run.state_type.value == "COMPLETED" for run in runs), [run.state_name for run in runs]
    run_of = {run.parameters["campaign_id"]: str(run.id) for run in runs}
    assert {c: s["flow_run_ids"] for c, s in statuses.items()} == {c: [run_of[c]] for c in ids}
    for c in ids:
        (delivery,) = [d for d in rt.store.deliveries() if d["campaign_id"] == c and d["kind"] == "launch"]
        assert delivery["status"] == "handed_over" and delivery["flow_run_id"] == run_of[c]

    # Each run executed once, by exactly one of the two workers (the workers' own Prefect events), and both
    # workers took part.
    assert {str(run.id): len(executed_by.get(str(run.id), [])) for run in runs} == {str(run.id): 1 for run in runs}
    assert {str(run.id): submitted_by.get(str(run.id)) for run in runs} == {
        str(run.id): executed_by[str(run.id)] for run in runs}
    per_worker = Counter(names[0] for names in executed_by.values())
    assert set(per_worker) == set(WORKERS) and sum(per_worker.values()) == N_CAMPAIGNS, per_worker
    assert all(run.run_count == 1 for run in detailed), [run.run_count for run in detailed]
    assert all(run.infrastructure_pid for run in detailed)
    assert all(run.work_pool_name == POOL for run in detailed)

    # Nothing published twice: per release and platform, one post on the sandbox if the store says published,
    # none if the post was deferred by the platform's quota (TikTok allows 15 posts a day per creator).
    on_sandbox = Counter((p["platform"], p.get("sha256")) for p in sandbox_posts(layout.sandbox.url)
                         if not p.get("in_reply_to"))
    deferred: Counter[str] = Counter()
    for c, video in zip(ids, videos, strict=True):
        posts = statuses[c]["platforms"]
        assert posts and all(p["status"] in ("published", "scheduled") for p in posts.values()), (c, posts)
        assert any(p["status"] == "published" for p in posts.values()), (c, posts)
        sha = video_sha256(str(video))
        assert {p: on_sandbox[(p, sha)] for p in posts} == {
            p: int(v["status"] == "published") for p, v in posts.items()}, (c, posts)
        deferred.update(p for p, v in posts.items() if v["status"] == "scheduled")
    assert sum(on_sandbox.values()) == sum(
        v["status"] == "published" for s in statuses.values() for v in s["platforms"].values())

    starts = sorted(run.start_time for run in detailed if run.start_time)
    pickup = [(run.start_time - run.expected_start_time).total_seconds()
              for run in detailed if run.start_time and run.expected_start_time]
    with capsys.disabled():
        print(f"\n[measure] scale-out: {N_CAMPAIGNS} launches in {elapsed:.0f} s "
              f"({N_CAMPAIGNS / elapsed:.2f}/s) on 2 process workers (limit 4 each), runs per worker "
              f"{dict(per_worker)}; deferred by quota {dict(deferred)}; "
              f"run created -> running p50 {percentile(pickup, 50):.1f} s, "
              f"p99 {percentile(pickup, 99):.1f} s; first start -> last start "
              f"{(starts[-1] - starts[0]).total_seconds():.0f} s")
