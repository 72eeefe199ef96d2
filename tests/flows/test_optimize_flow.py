"""optimize-campaigns under Prefect: approval gate, once per window, failures leave budgets alone."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.calling import final_state
from flows.launch_campaign import launch_campaign
from flows.optimize_campaigns import optimize_campaigns
from metacentric.clock import advance_sandbox_clock
from metacentric.runtime import Runtime
from models import DecisionOutcome
from sandbox.faults import FaultRule
from sandbox.server import RunningSandbox
from tests.flows.conftest import new_campaign


async def launched(rt: Runtime, sandbox: RunningSandbox, tmp_path: Path, name: str) -> str:
    campaign = await new_campaign(rt, tmp_path, name)
    assert (await final_state(launch_campaign, campaign.id)).is_completed()
    # At least two simulated days of delivery, so the next cycle has insights to learn from, landing at
    # noon: earlier tests leave the shared clock at any hour, and a cycle that straddles midnight is
    # rightly a new window, which would make "the same cycle twice" two different cycles.
    now = datetime.fromisoformat(httpx.get(f"{sandbox.url}/_admin/clock", timeout=10).json()["now"])
    noon = (now + timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    if noon < now + timedelta(days=2):
        noon += timedelta(days=1)
    advance_sandbox_clock(sandbox.url, seconds=(noon - now).total_seconds())
    return campaign.id


async def paused_run_id(timeout_s: float = 60) -> str:
    async with get_client() as client:
        for _ in range(int(timeout_s / 0.25)):
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
            if runs:
                return str(runs[0].id)
            await asyncio.sleep(0.25)
    raise AssertionError("the optimize run never paused for approval")


async def test_big_move_waits_for_approval_and_applies_the_edited_split(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Approval Artist - Big Move")
    before = await rt.clients.meta.ad_set_budgets(cid)
    rt.settings.approval_threshold_fraction = 0.0001  # every move needs a person

    running = asyncio.create_task(final_state(optimize_campaigns, campaign_ids=[cid]))
    run_id = await paused_run_id()
    assert await rt.clients.meta.ad_set_budgets(cid) == before  # nothing applied while waiting

    # The person moves 50 cents from the biggest platform to the smallest: within the guardrails.
    edited = dict(before)
    biggest, smallest = max(before, key=before.__getitem__), min(before, key=before.__getitem__)
    edited[biggest] = round(edited[biggest] - 0.5, 2)
    edited[smallest] = round(edited[smallest] + 0.5, 2)
    await resume_flow_run(run_id, run_input={"decisions": {cid: {"approve": True, "split": edited}},
                                             "approved_by": "ana@label.example"})
    state = await asyncio.wait_for(running, timeout=120)
    assert state.is_completed(), state.message

    decision = rt.store.decisions(cid)[-1]
    assert decision.outcome is DecisionOutcome.APPLIED
    assert decision.approved_by == "ana@label.example"
    assert {p.value: v for p, v in decision.after.items()} == edited
    assert await rt.clients.meta.ad_set_budgets(cid) == edited


async def test_an_edit_that_breaks_the_guardrails_is_not_applied(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Approval Artist - Overreach")
    before = await rt.clients.meta.ad_set_budgets(cid)
    rt.settings.approval_threshold_fraction = 0.0001
    running = asyncio.create_task(final_state(optimize_campaigns, campaign_ids=[cid]))
    run_id = await paused_run_id()
    everything_on_one = {p: 0.0 for p in before}
    everything_on_one[min(before)] = round(sum(before.values()), 2)
    await resume_flow_run(run_id, run_input={"decisions": {cid: {"approve": True, "split": everything_on_one}}})
    assert (await asyncio.wait_for(running, timeout=120)).is_completed()
    decision = rt.store.decisions(cid)[-1]
    assert decision.outcome is DecisionOutcome.NOT_APPLIED
    assert "breaks guardrails" in (decision.detail or "")
    assert await rt.clients.meta.ad_set_budgets(cid) == before


async def test_no_answer_in_time_means_not_applied(rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Approval Artist - Silence")
    before = await rt.clients.meta.ad_set_budgets(cid)
    rt.settings.approval_threshold_fraction = 0.0001
    rt.settings.approval_timeout_s = 2

    state = await final_state(optimize_campaigns, campaign_ids=[cid])
    # Prefect's own policy ends a run whose pause expired as Failed ("paused and never resumed"); the
    # cycle still finished its work first and audited the decision.
    assert state.is_completed() or "never resumed" in (state.message or ""), state.message
    decision = rt.store.decisions(cid)[-1]
    assert decision.outcome is DecisionOutcome.NOT_APPLIED
    assert "no approval within 2 s" in (decision.detail or "")
    assert await rt.clients.meta.ad_set_budgets(cid) == before


async def test_rerunning_the_same_cycle_makes_no_second_meta_call(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Cycle Artist - Twice")
    first = await final_state(optimize_campaigns, campaign_ids=[cid])
    assert first.is_completed(), first.message
    decisions = rt.store.decisions(cid)
    assert decisions[-1].outcome in (DecisionOutcome.APPLIED, DecisionOutcome.UNCHANGED)
    budgets = await rt.clients.meta.ad_set_budgets(cid)

    # Any budget write now would hit this fault; the re-run must not even try.
    sandbox.state.faults.add(FaultRule(platform="meta", endpoint="adsets.update", kind="transient"))
    again = await final_state(optimize_campaigns, campaign_ids=[cid])
    assert again.is_completed(), again.message
    assert sandbox.state.faults.rules()[0].fired == 0
    assert rt.store.decisions(cid) == decisions
    assert await rt.clients.meta.ad_set_budgets(cid) == budgets


async def test_a_failed_meta_update_is_audited_not_applied_with_the_old_budget_in_place(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Cycle Artist - Refused")
    before = await rt.clients.meta.ad_set_budgets(cid)
    sandbox.state.faults.add(FaultRule(platform="meta", endpoint="adsets.update", kind="token_expired"))
    state = await final_state(optimize_campaigns, campaign_ids=[cid])
    assert state.is_completed(), state.message
    decision = rt.store.decisions(cid)[-1]
    assert decision.outcome is DecisionOutcome.NOT_APPLIED
    assert "re-auth needed for meta" in (decision.detail or "")
    sandbox.state.faults.clear()
    assert await rt.clients.meta.ad_set_budgets(cid) == before


class _Collector:
    """A tiny loopback HTTP endpoint standing in for the user's UNIFIED_ANALYTICS_ENDPOINT."""

    def __init__(self, fail: bool) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, object]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if fail:
                    self.send_response(503)
                else:
                    received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


async def test_unified_analytics_endpoint_gets_the_table_and_never_blocks_the_budget(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    cid = await launched(rt, sandbox, tmp_path, "Analytics Artist - Shared Table")
    collector = _Collector(fail=False)
    rt.settings.unified_analytics_endpoint = collector.url
    assert (await final_state(optimize_campaigns, campaign_ids=[cid])).is_completed()
    assert len(collector.received) == 1
    posted = collector.received[0]
    assert posted["campaign_id"] == cid
    rows = posted["rows"]
    assert isinstance(rows, list) and rows
    assert {"platform", "day", "spend", "views", "engagement", "cost_per_engaged_view", "trend"} <= set(rows[0])
    collector.server.shutdown()

    broken = _Collector(fail=True)
    rt.settings.unified_analytics_endpoint = broken.url
    advance_sandbox_clock(sandbox.url, days=1)
    state = await final_state(optimize_campaigns, campaign_ids=[cid])
    assert state.is_completed(), state.message  # the endpoint failing does not fail the cycle
    assert rt.store.decisions(cid)[-1].outcome in (DecisionOutcome.APPLIED, DecisionOutcome.UNCHANGED)
    broken.server.shutdown()
