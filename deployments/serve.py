"""`metacentric serve`: everything on one machine.

- a sandbox on a free loopback port (sandbox mode, unless METACENTRIC_SANDBOX_URL names a running one),
- a local Prefect server (unless PREFECT_API_URL names one),
- the launcher (this process) and the receiver (a child process, deployments/receiver_process.py),
  subscribed to the sandbox's Meta webhooks,
- the three deployments served by a child process (deployments/served.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from deployments.launcher import Launcher, LaunchMode
from deployments.local import loopback_if_any, stop_process

if TYPE_CHECKING:
    from platforms.meta import MetaClient

log = logging.getLogger("metacentric.serve")


def run_serve(*, host: str = "127.0.0.1", port: int = 8000, launch_mode: LaunchMode = "inprocess") -> None:
    from metacentric import runtime
    from metacentric.prefect_server import prefect_api
    from metacentric.settings import get_settings

    settings = get_settings()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        if settings.mode == "sandbox" and not (settings.sandbox_url or os.environ.get("METACENTRIC_SANDBOX_URL")):
            from sandbox.server import start_in_thread
            from sandbox.state import SandboxState

            sandbox = stack.enter_context(start_in_thread(SandboxState(Path(settings.var_dir) / "sandbox.json")))
            os.environ["METACENTRIC_SANDBOX_URL"] = sandbox.url
            print(f"sandbox: {sandbox.url}")
        api_url = stack.enter_context(prefect_api(Path(settings.var_dir) / "prefect"))
        print(f"prefect: {api_url.removesuffix('/api')}")
        rt = runtime.configure()
        served = subprocess.Popen([sys.executable, "-m", "deployments.served"], env={**os.environ})
        stack.callback(stop_process, served)
        launcher = Launcher(rt.store, mode=launch_mode, doorbell=True).start()
        stack.callback(launcher.stop)

        from deployments.receiver_process import start_receiver_process

        # The receiver runs in its own process: its acknowledgements do not wait on the launches' GIL.
        receiver = start_receiver_process(rt.settings, host=host, port=port, doorbell_port=launcher.doorbell_port)
        stack.callback(stop_process, receiver)
        if rt.settings.mode == "sandbox":
            callback = f"http://{loopback_if_any(host)}:{port}/webhooks/meta"
            _subscribe(launcher, rt.clients.meta, callback, rt.settings.meta_webhook_verify_token.get_secret_value())

        print(f"receiver: http://{host}:{port}  (dashboard /dashboard, API docs /docs)")
        while receiver.poll() is None and served.poll() is None:
            time.sleep(0.5)
        if receiver.poll() is not None or served.poll() is not None:
            raise SystemExit(f"a child process exited (receiver: {receiver.poll()}, deployments: {served.poll()})")


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (docker stop, Railway, systemd) unwinds like Ctrl-C, so the children are stopped too.

    With the default handler the process would die right there and leave the Prefect server, the receiver
    and the served process running.
    """
    raise SystemExit(128 + signum)


def _subscribe(launcher: Launcher, meta: MetaClient, callback: str, verify_token: str, timeout_s: float = 60.0) -> None:
    """Subscribe the (running) receiver to Meta's webhooks: Meta, here the sandbox, verifies the callback
    with a GET first. A failure is logged, not fatal: the receiver still serves the API."""
    try:
        launcher.submit(meta.subscribe_webhooks(callback, verify_token)).result(timeout_s)
    except Exception as exc:
        log.error("could not subscribe %s to Meta's webhooks: %s", callback, exc)
    else:
        print(f"subscribed to Meta webhooks: {callback}")
