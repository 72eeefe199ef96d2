"""`metacentric demo`: the whole product on the sandbox, end to end, in a few minutes.

Starts the sandbox and a local Prefect server, starts the receiver and subscribes it to the sandbox's
Meta webhooks, creates campaigns through the Meta Marketing API, lets the sandbox deliver their signed
webhooks, waits for the launches, plays out optimization cycles on the simulated clock, then prints a
summary and writes var/demo/report.json. Exit status 1 if any campaign failed to launch.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from metacentric.clock import advance_sandbox_clock
from metacentric.media import make_demo_video
from metacentric.settings import Settings
from models import Campaign, Creative, Platform, Targeting

console = Console()
LAUNCH_TIMEOUT_S = 120


@dataclass(frozen=True)
class Release:
    artist: str
    song: str
    genre: str
    daily_budget: float
    countries: tuple[str, ...]


RELEASES = (
    Release("Nova Reyes", "Midnight Static", "electronic", 120.0, ("US", "GB")),
    Release("The Hollow Pines", "Paper Lanterns", "indie", 60.0, ("US", "CA")),
    Release("Kai Monroe", "Gold Teeth", "hiphop", 150.0, ("US",)),
    Release("Luz Marina", "Corazón de Neón", "latin", 90.0, ("MX", "US", "ES")),
    Release("Dune Arcade", "Overdrive", "rock", 80.0, ("US", "DE")),
)


def run_demo(var_dir: Path = Path("var/demo"), n_campaigns: int = 3, cycles: int = 14) -> int:
    if not 1 <= n_campaigns <= len(RELEASES):
        console.print(f"[red]--campaigns must be between 1 and {len(RELEASES)}[/red]")
        return 2
    started = time.monotonic()
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from metacentric.prefect_server import prefect_api
    from sandbox.server import start_in_thread
    from sandbox.state import SandboxState

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console)
    with progress:
        boot = progress.add_task("starting sandbox and Prefect server", total=2)
        with start_in_thread(SandboxState(seed=11)) as sandbox:
            progress.advance(boot)
            with prefect_api(var_dir / "prefect") as api_url:
                progress.advance(boot)
                return _run(var_dir, n_campaigns, cycles, sandbox, api_url, progress, started)


def _run(var_dir: Path, n_campaigns: int, cycles: int, sandbox: Any, api_url: str, progress: Progress,
         started: float) -> int:
    from deployments.launcher import Launcher
    from deployments.local import start_receiver
    from deployments.receiver import create_receiver
    from metacentric import runtime
    from metacentric.demo_report import build_report, print_summary

    settings = Settings(var_dir=var_dir, sandbox_url=sandbox.url)
    rt = runtime.configure(settings)
    launcher = Launcher(rt.store, poll_s=0.2).start()
    receiver_url, receiver = start_receiver(create_receiver(rt.settings, rt.store, launcher, rt.clients.meta))
    try:
        meta = rt.clients.meta
        launcher.submit(meta.subscribe_webhooks(receiver_url + "/webhooks/meta",
                                                rt.settings.meta_webhook_verify_token.get_secret_value())).result(60)
        creating = progress.add_task("creating campaigns on Meta (sandbox)", total=n_campaigns)
        ids: list[str] = []
        for release in RELEASES[:n_campaigns]:
            name = f"{release.artist} - {release.song}"
            video = make_demo_video(var_dir / "videos" / f"{len(ids)}.mp4", seed=name)
            campaign_id = launcher.submit(meta.create_campaign(name, release.daily_budget)).result(60)
            # The release (artist, song, video) is registered as the campaign is created; Meta's webhook
            # arrives once the campaign leaves IN_PROCESS, and the launch reads both.
            rt.store.save_campaign(Campaign(
                id=campaign_id, name=name, artist=release.artist, song=release.song,
                daily_budget=release.daily_budget, targeting=Targeting(countries=list(release.countries)),
                creative=Creative(video_path=str(video), genre=release.genre), platforms=list(Platform)))
            ids.append(campaign_id)
            progress.advance(creating)

        launching = progress.add_task("launches (webhook -> Prefect flow -> 4 platforms)", total=len(ids))
        deadline = time.monotonic() + LAUNCH_TIMEOUT_S
        done: set[str] = set()
        while len(done) < len(ids) and time.monotonic() < deadline:
            for cid in ids:
                if cid not in done and rt.store.campaign_state(cid) in ("COMPLETED", "FAILED"):
                    done.add(cid)
                    progress.advance(launching)
            time.sleep(0.2)

        optimizing = progress.add_task("optimization cycles (1 simulated day each)", total=cycles)
        from flows.calling import final_state
        from flows.optimize_campaigns import optimize_campaigns

        launched = [cid for cid in ids if rt.store.campaign_state(cid) == "COMPLETED"]
        for _ in range(cycles if launched else 0):
            advance_sandbox_clock(sandbox.url, days=1)
            launcher.submit(final_state(optimize_campaigns, campaign_ids=launched)).result(300)
            progress.advance(optimizing)

        report = build_report(rt.store, sandbox, ids, cycles if launched else 0)
        report["prefect_api_url"] = api_url
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        (var_dir / "report.json").write_text(json.dumps(report, indent=2))
    finally:
        receiver.should_exit = True
        launcher.stop()
    progress.stop()
    print_summary(console, report, var_dir / "report.json")
    ok = all(c["state"] == "COMPLETED" for c in report["campaigns"])
    return 0 if ok else 1
