"""`metacentric serve`: everything on one machine.

- a sandbox on a free loopback port (sandbox mode, unless METACENTRIC_SANDBOX_URL names a running one),
- a local Prefect server (unless PREFECT_API_URL names one),
- the receiver + launcher (this process), subscribed to the sandbox's Meta webhooks,
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

import uvicorn

from deployments.launcher import Launcher, LaunchMode

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
        stack.callback(_stop_child, served)
        launcher = Launcher(rt.store, mode=launch_mode).start()
        stack.callback(launcher.stop)

        from deployments.receiver import create_receiver

        app = create_receiver(rt.settings, rt.store, launcher, rt.clients.meta)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        if rt.settings.mode == "sandbox":
            callback = f"http://{_loopback_if_any(host)}:{port}/webhooks/meta"
            verify_token = rt.settings.meta_webhook_verify_token.get_secret_value()
            threading.Thread(target=_subscribe_when_up, name="meta-webhook-subscription", daemon=True,
                             args=(server, launcher, rt.clients.meta, callback, verify_token)).start()

        print(f"receiver: http://{host}:{port}  (dashboard /dashboard, API docs /docs)")
        server.run()


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (docker stop, Railway, systemd) unwinds like Ctrl-C, so the children are stopped too.

    uvicorn shuts down gracefully on SIGTERM and then re-raises it with the previous handler; with the
    default handler the process died right there and left the Prefect server and the served process running.
    """
    raise SystemExit(128 + signum)


def _stop_child(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _loopback_if_any(host: str) -> str:
    """The address the local sandbox should call back: a wildcard bind is reachable on loopback."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _subscribe_when_up(server: uvicorn.Server, launcher: Launcher, meta: MetaClient, callback: str,
                       verify_token: str, timeout_s: float = 60.0) -> None:
    """Subscribe the receiver to Meta's webhooks once it accepts connections.

    Meta (here the sandbox) verifies the callback with a GET before it accepts the subscription, so this
    cannot run in a startup hook: uvicorn binds its socket only after startup hooks finish, and the
    handshake would be refused (the subscription failed and `serve` exited).
    """
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if server.should_exit:
            return
        if time.monotonic() > deadline:
            log.error("the receiver did not start within %.0f s; not subscribed to Meta's webhooks", timeout_s)
            return
        time.sleep(0.05)
    try:
        launcher.submit(meta.subscribe_webhooks(callback, verify_token)).result(timeout_s)
    except Exception as exc:  # the receiver still serves the API; say why Meta's webhooks will not arrive
        log.error("could not subscribe %s to Meta's webhooks: %s", callback, exc)
    else:
        print(f"subscribed to Meta webhooks: {callback}")
