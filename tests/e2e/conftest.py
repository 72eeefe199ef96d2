"""End-to-end fixtures: the receiver under uvicorn on a free loopback port, with a real launcher.

The Prefect harness is the flow tests' one (tests/flows/conftest.py). Importing its fixture here makes
pytest register a second, e2e-scoped definition with its own session cache, which would start a second
harness; so both definitions are made to share one `prefect_test_harness` (started by whichever suite
asks first, stopped when the last one is done). If `prefect_harness` moves to tests/conftest.py, drop
the shim and the import.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

import tests.flows.conftest as flows_conftest
from deployments.launcher import Launcher
from deployments.receiver import create_receiver
from intelligence.virality import ViralityModel, cold_start_model
from metacentric import runtime as runtime_module
from metacentric.media import make_demo_video
from metacentric.runtime import Runtime
from metacentric.settings import Settings
from metacentric.store import Store
from metacentric.tables import Base
from models import Campaign, Creative, Platform
from sandbox.server import RunningSandbox, free_port
from tests.flows.conftest import prefect_harness  # noqa: F401  (fixture, shared below)


# one Prefect harness per session -------------------------------------------------------------------
class _OneHarness:
    """`prefect_test_harness` shared by every fixture that enters it: started once, stopped at the last exit."""

    def __init__(self, start: Callable[..., AbstractContextManager[None]]) -> None:
        self._start = start
        self._users = 0
        self._stack = ExitStack()

    @contextmanager
    def __call__(self, **kwargs: Any) -> Iterator[None]:
        if self._users == 0:
            self._stack.enter_context(self._start(**kwargs))
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                self._stack.close()


if not isinstance(flows_conftest.prefect_test_harness, _OneHarness):
    flows_conftest.prefect_test_harness = _OneHarness(flows_conftest.prefect_test_harness)  # type: ignore[assignment]


# helpers ---------------------------------------------------------------------------------------------
def sign(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}


def meta_change(campaign_id: str, *, when: int = 1_760_000_000, field: str = "in_process_ad_objects",
                level: str = "CAMPAIGN", account: str = "1000000000000002") -> bytes:
    """Meta's ad-account webhook body (the bytes Meta would send: compact, ASCII-escaped)."""
    value: dict[str, Any] = ({"id": campaign_id, "level": level, "status_name": "Active"}
                             if field == "in_process_ad_objects" else {"object_id": campaign_id})
    if field == "field_changed":
        value["object_type"] = "campaign"
    payload = {"object": "ad_account", "entry": [{"id": account, "time": when,
                                                  "changes": [{"field": field, "value": value}]}]}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def store_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (to show that a refused request changed nothing)."""
    with store.session() as s:
        return {t.name: sorted(tuple(map(repr, row)) for row in s.execute(select(t)).all())
                for t in Base.metadata.sorted_tables}


def sandbox_posts(sandbox_url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{sandbox_url}/_admin/posts", timeout=30).json()  # type: ignore[no-any-return]


def video_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def wait_until(check: Callable[[], bool], *, timeout_s: float = 90.0, what: str = "condition") -> None:
    """Poll until `check()` holds (a deadline for a hung system, not a performance assertion)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(0.1)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on a free loopback port, in a thread; yield its base URL."""
    port = free_port()
    # log_config=None: uvicorn's default dictConfig closes every logging handler in the process, and
    # closing Prefect's API log handler waits up to 5 s for its log worker to drain.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off", backlog=512, timeout_keep_alive=120))
    thread = threading.Thread(target=server.run, name=f"receiver-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the receiver did not start on {url}")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class ReceiverUnderTest:
    url: str
    rt: Runtime
    launcher: Launcher
    sandbox: RunningSandbox

    @property
    def store(self) -> Store:
        return self.rt.store

    @property
    def secret(self) -> str:
        return self.rt.settings.meta_webhook_app_secret.get_secret_value()

    @property
    def api_token(self) -> str:
        return self.rt.settings.api_token.get_secret_value()

    def on_launcher_loop(self, coro: Any, timeout_s: float = 60.0) -> Any:
        """Run a coroutine where the async clients live (the launcher's loop)."""
        return self.launcher.submit(coro).result(timeout_s)

    def new_campaign(self, name: str, budget: float = 100.0, platforms: list[Platform] | None = None) -> Campaign:
        """A campaign created on Meta (the sandbox) with its release (artist, song, video) in the store."""
        campaign_id = self.on_launcher_loop(self.rt.clients.meta.create_campaign(name, budget))
        artist, song = name.split(" - ", 1)
        video = make_demo_video(self.rt.settings.var_dir / "videos" / f"{campaign_id}.mp4", size=600_000, seed=name)
        campaign = Campaign(id=campaign_id, name=name, artist=artist, song=song, daily_budget=budget,
                            creative=Creative(video_path=str(video)), platforms=platforms or list(Platform))
        self.store.save_campaign(campaign)
        return campaign


# fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def virality_model() -> ViralityModel:
    """Train the cold-start model once; each fresh store gets it as its promoted model (as after a first launch)."""
    return cold_start_model()


@pytest.fixture
def e2e_rt(sandbox: RunningSandbox, tmp_path: Path, virality_model: ViralityModel) -> Iterator[Runtime]:
    rt = runtime_module.configure(Settings(var_dir=tmp_path, sandbox_url=sandbox.url))
    m = virality_model
    rt.store.save_model(m.version, m.source, m.metrics, m.to_blob(), promoted=True)
    yield rt
    runtime_module.reset()


@pytest.fixture
def quiet_receiver(e2e_rt: Runtime, sandbox: RunningSandbox) -> Iterator[ReceiverUnderTest]:
    """The receiver with its launcher NOT started: accepted deliveries stay in the store, Prefect is never called."""
    launcher = Launcher(e2e_rt.store)
    app = create_receiver(e2e_rt.settings, e2e_rt.store, launcher, e2e_rt.clients.meta)
    with serving(app) as url:
        yield ReceiverUnderTest(url, e2e_rt, launcher, sandbox)
    launcher.loop.run_until_complete(e2e_rt.clients.aclose())
    launcher.loop.close()


@contextmanager
def live_receiver_for(rt: Runtime, sandbox: RunningSandbox, **launcher_kwargs: Any) -> Iterator[ReceiverUnderTest]:
    """The receiver with a running in-process launcher (launches run as Prefect flows in this process)."""
    launcher = Launcher(rt.store, **{"poll_s": 0.2, **launcher_kwargs}).start()
    try:
        app = create_receiver(rt.settings, rt.store, launcher, rt.clients.meta)
        with serving(app) as url:
            yield ReceiverUnderTest(url, rt, launcher, sandbox)
    finally:
        launcher.submit(rt.clients.aclose()).result(30)
        launcher.stop()


@pytest.fixture
def live_receiver(prefect_harness: None, e2e_rt: Runtime, sandbox: RunningSandbox) -> Iterator[ReceiverUnderTest]:  # noqa: F811
    with live_receiver_for(e2e_rt, sandbox) as receiver:
        yield receiver
