"""Running the receiver app in a background thread on a free loopback port (demo, benchmarks, tests)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from sandbox.server import free_port


def start_receiver(app: Any, *, name: str = "receiver") -> tuple[str, uvicorn.Server]:
    """Serve `app` on 127.0.0.1:<free port> and return its URL once /healthz answers."""
    port = free_port()
    # log_config=None: uvicorn's default logging setup would close every handler in the process (Prefect's too).
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off", log_config=None))
    threading.Thread(target=server.run, name=name, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url, server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError(f"the receiver did not start on {url}")
