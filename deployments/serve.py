"""`metacentric serve`: everything on one machine.

- a sandbox on a free loopback port (sandbox mode, unless METACENTRIC_SANDBOX_URL names a running one),
- a local Prefect server (unless PREFECT_API_URL names one),
- the receiver + launcher (this process), subscribed to the sandbox's Meta webhooks,
- the three deployments served by a child process (deployments/served.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from deployments.launcher import Launcher, LaunchMode


def run_serve(*, host: str = "127.0.0.1", port: int = 8000, launch_mode: LaunchMode = "inprocess") -> None:
    from metacentric import runtime
    from metacentric.prefect_server import prefect_api
    from metacentric.settings import get_settings

    settings = get_settings()
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
        stack.callback(served.terminate)
        launcher = Launcher(rt.store, mode=launch_mode).start()
        stack.callback(launcher.stop)

        from deployments.receiver import create_receiver

        app = create_receiver(rt.settings, rt.store, launcher, rt.clients.meta)
        if rt.settings.mode == "sandbox":
            callback = f"http://{host}:{port}/webhooks/meta"

            @app.on_event("startup")
            async def _subscribe() -> None:  # once the receiver answers the handshake
                import asyncio

                await asyncio.wrap_future(launcher.submit(rt.clients.meta.subscribe_webhooks(
                    callback, rt.settings.meta_webhook_verify_token.get_secret_value())))

        print(f"receiver: http://{host}:{port}  (dashboard /dashboard, API docs /docs)")
        uvicorn.run(app, host=host, port=port, log_level="info")
