"""The `metacentric` command. Heavy imports (Prefect, SDKs) happen inside commands so --help is instant."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Metacentric: one Meta Ads campaign becomes a whole cross-platform launch.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def demo(
    campaigns: Annotated[int, typer.Option(help="How many demo campaigns to create.")] = 3,
    cycles: Annotated[int, typer.Option(help="Optimization cycles (simulated days).")] = 14,
    var_dir: Annotated[Path, typer.Option(help="Where the demo's store, videos and report go.")] = Path("var/demo"),
) -> None:
    """Run the whole product on the sandbox: create campaigns, receive their webhooks, launch, optimize, report."""
    from metacentric.demo import run_demo

    raise typer.Exit(run_demo(var_dir=var_dir, n_campaigns=campaigns, cycles=cycles))


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8900,
    host: Annotated[str, typer.Option(help="Interface to bind; keep it on loopback.")] = "127.0.0.1",
    state_file: Annotated[Path | None, typer.Option(help="Keep the sandbox's state here across restarts.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated market.")] = 0,
) -> None:
    """Start the sandbox: local fakes of Meta, YouTube, TikTok, Instagram and X (admin switches under /_admin)."""
    from sandbox.server import serve_forever

    typer.echo(f"sandbox on http://{host}:{port}  (export METACENTRIC_SANDBOX_URL=http://{host}:{port})")
    serve_forever(host=host, port=port, state_file=state_file, seed=seed)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface for the receiver.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the receiver.")] = 8000,
    launch_mode: Annotated[str, typer.Option(help="inprocess (default), deployment or event (workers run launches).")]
    = "inprocess",
) -> None:
    """Run the receiver, the launcher and the scheduled deployments on this machine."""
    from deployments.serve import run_serve

    if launch_mode not in ("inprocess", "deployment", "event"):
        raise typer.BadParameter("use inprocess, deployment or event", param_hint="--launch-mode")
    run_serve(host=host, port=port, launch_mode=launch_mode)  # type: ignore[arg-type]


@app.command()
def launch(campaign_id: Annotated[str, typer.Argument(help="The Meta campaign id to launch.")]) -> None:
    """Launch an existing Meta campaign now (safe to repeat: only what is missing is done)."""
    from flows.calling import final_state
    from flows.launch_campaign import launch_campaign
    from metacentric.runtime import configure

    configure()
    state = asyncio.run(final_state(launch_campaign, campaign_id))
    typer.echo(f"{state.type.value}: {state.message or ''}")
    raise typer.Exit(0 if state.is_completed() else 1)


@app.command()
def optimize(
    campaign_id: Annotated[list[str] | None, typer.Argument(help="Campaigns to optimize (default: all active).")]
    = None,
    dry_run: Annotated[bool, typer.Option(help="Decide and record, but do not change Meta budgets.")] = False,
) -> None:
    """Run one optimization cycle: collect metrics, re-split budgets within guardrails, apply."""
    from flows.calling import final_state
    from flows.optimize_campaigns import optimize_campaigns
    from metacentric.runtime import configure

    configure()
    state = asyncio.run(final_state(optimize_campaigns, campaign_ids=campaign_id or None, dry_run=dry_run))
    typer.echo(f"{state.type.value}: {state.message or ''}")
    raise typer.Exit(0 if state.is_completed() else 1)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
