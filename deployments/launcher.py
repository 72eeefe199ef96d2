"""Hands accepted deliveries to Prefect. The store is the inbox: nothing is lost if Prefect is down.

The receiver writes each accepted delivery (status "received") before it answers 200, then pokes the
launcher. The launcher's pump takes received deliveries and starts their launch:

- `inprocess` (default for `serve` and `demo`): runs the launch-campaign flow in this process, on the
  launcher's own event loop, so a launch starts in milliseconds instead of waiting for a worker to poll
  and spawn a Python process (see README, "Why an in-process launcher").
- `deployment`: creates a run of the `launch-campaign` deployment with the delivery id as idempotency
  key, for a layout where workers execute the runs (scale-out).
- `event`: posts a `metacentric.launch.requested` event (event id derived from the delivery id, so
  Prefect dedupes too); the deployment's trigger in prefect.yaml creates the run.

If handing over fails (Prefect API unreachable), the delivery stays "received" and is retried with
backoff; a delivery is marked "handed_over" only once Prefect has a flow run for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Literal

from metacentric.store import Store

log = logging.getLogger("metacentric.launcher")

LaunchMode = Literal["inprocess", "deployment", "event"]
LAUNCH_EVENT = "metacentric.launch.requested"
DEPLOYMENT_NAME = "launch-campaign/launch-campaign"


class Launcher:
    def __init__(self, store: Store, *, mode: LaunchMode = "inprocess", max_concurrent: int = 8,
                 poll_s: float = 1.0, max_backoff_s: float = 30.0, doorbell: bool = False) -> None:
        """`doorbell`: also wake on a UDP datagram to 127.0.0.1:`doorbell_port`, for a receiver in another
        process (`deployments.receiver_process`); the poll still finds what a lost datagram did not announce."""
        self.store = store
        self.mode = mode
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.max_concurrent = max_concurrent
        self.loop = asyncio.new_event_loop()
        # Run with the creator's context so Prefect settings made with temporary_settings() apply here too.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="metacentric-launcher",
                                        daemon=True)
        self._wake: asyncio.Event | None = None
        self._in_flight: set[str] = set()
        self._stopping = False
        self._sharing_clients = False
        self.failures = 0  # consecutive hand-over failures (observable)
        self._doorbell: socket.socket | None = None
        if doorbell:
            self._doorbell = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._doorbell.bind(("127.0.0.1", 0))

    @property
    def doorbell_port(self) -> int:
        if self._doorbell is None:
            raise RuntimeError("this launcher was made without doorbell=True")
        return int(self._doorbell.getsockname()[1])

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Launcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        self.notify()
        self._thread.join(timeout)

    def notify(self) -> None:
        """A new delivery is in the store: look now rather than at the next poll."""
        if self._wake is not None:
            self.loop.call_soon_threadsafe(self._wake.set)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run a coroutine on the launcher's loop (where the async clients live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._pump())

    # the pump --------------------------------------------------------------------------------------
    async def _pump(self) -> None:
        self._wake = asyncio.Event()
        if self._doorbell is not None:
            wake = self._wake
            await self.loop.create_datagram_endpoint(lambda: _Ring(wake), sock=self._doorbell)
        slots = asyncio.Semaphore(self.max_concurrent)
        tasks: set[asyncio.Task[None]] = set()
        backoff = 0.0
        async with contextlib.AsyncExitStack() as clients:
            while not self._stopping:
                if self.mode == "inprocess" and not self._sharing_clients:
                    self._sharing_clients = await self._share_prefect_clients(clients)
                backoff = await self._pump_once(slots, tasks, backoff)
            if tasks:  # before the shared clients close
                await asyncio.wait(tasks, timeout=30)

    async def _share_prefect_clients(self, clients: contextlib.AsyncExitStack) -> bool:
        """One Prefect client (async and sync) for every flow run this loop starts.

        Without it each flow run and each sync Prefect call builds its own httpx client, and with it an SSL
        context (certificate bundle parsed, ~10 ms of CPU each): a fifth of the launcher's CPU, on the
        event loop every launch shares. The contexts are entered here, in the pump, so that the tasks it
        creates for hand-overs inherit them. If the Prefect API is down this fails and is tried again at
        the next look; meanwhile flow runs make their own clients, as Prefect does by default.
        """
        from prefect.context import AsyncClientContext, SyncClientContext

        try:
            await clients.enter_async_context(AsyncClientContext.get_or_create())
            clients.enter_context(SyncClientContext.get_or_create())
        except Exception as exc:
            log.warning("Prefect API not reachable yet (%s); will try again", type(exc).__name__)
            await clients.aclose()
            return False
        return True

    async def _pump_once(self, slots: asyncio.Semaphore, tasks: set[asyncio.Task[None]], backoff: float) -> float:
        """Start a hand-over for every received delivery not in flight, then wait to be woken (or the poll)."""
        for delivery in self.store.deliveries(status="received"):
            if delivery["kind"] != "launch" or delivery["id"] in self._in_flight:
                continue
            self._in_flight.add(delivery["id"])
            task = asyncio.create_task(self._hand_over(delivery, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        backoff = min(self.max_backoff_s, max(self.poll_s, backoff * 2)) if self.failures else 0.0
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=backoff or self.poll_s)
        self._wake.clear()
        return backoff

    async def _hand_over(self, delivery: dict[str, Any], slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                runner = {"inprocess": self._run_inprocess, "deployment": self._run_deployment,
                          "event": self._emit_event}[self.mode]
                flow_run_id = await runner(delivery)
            self.failures = 0
            if flow_run_id is not None:
                self.store.mark_delivery(delivery["id"], "handed_over", flow_run_id)
        except Exception as exc:  # Prefect unreachable or crashed mid-run: keep the delivery, retry later
            self.failures += 1
            log.warning("could not hand delivery %s to Prefect (%s); will retry", delivery["id"], type(exc).__name__)
        finally:
            self._in_flight.discard(delivery["id"])

    async def _run_inprocess(self, delivery: dict[str, Any]) -> str | None:
        from flows.calling import final_state
        from flows.launch_campaign import launch_campaign

        state = await final_state(launch_campaign, delivery["campaign_id"])
        if state.is_crashed():
            raise RuntimeError(f"launch crashed: {state.message}")
        flow_run_id = state.state_details.flow_run_id
        return str(flow_run_id) if flow_run_id else None

    async def _run_deployment(self, delivery: dict[str, Any]) -> str | None:
        from prefect.deployments import arun_deployment

        run = await arun_deployment(DEPLOYMENT_NAME, parameters={"campaign_id": delivery["campaign_id"]},
                                    idempotency_key=delivery["id"], timeout=0)
        self.store.set_launch_flow_run_if_missing(delivery["campaign_id"], str(run.id))
        return str(run.id)

    async def _emit_event(self, delivery: dict[str, Any]) -> str | None:
        import uuid
        from datetime import UTC, datetime

        import httpx
        from prefect.settings import PREFECT_API_URL

        event = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"metacentric:{delivery['id']}")),
                 "occurred": datetime.now(UTC).isoformat(), "event": LAUNCH_EVENT,
                 "resource": {"prefect.resource.id": f"metacentric.campaign.{delivery['campaign_id']}"},
                 "payload": {"campaign_id": delivery["campaign_id"], "delivery_id": delivery["id"]}}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(f"{PREFECT_API_URL.value()}/events", json=[event])
            response.raise_for_status()
        return str(event["id"])  # the run id is recorded by the flow itself when it starts


class _Ring(asyncio.DatagramProtocol):
    """The doorbell: any datagram means "look in the store now"."""

    def __init__(self, wake: asyncio.Event) -> None:
        self._wake = wake

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._wake.set()
