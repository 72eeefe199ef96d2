"""Running services locally: the receiver app in a background thread on a free loopback port (demo,
benchmarks, tests), and waiting for / stopping child processes (serve, benchmarks, chaos runs)."""

from __future__ import annotations

import subprocess
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
    try:
        wait_healthy(url, timeout_s=20)
    except RuntimeError:
        server.should_exit = True
        raise
    return url, server


def wait_healthy(url: str, *, process: subprocess.Popen[bytes] | None = None, timeout_s: float = 60.0) -> None:
    """Return once `url`/healthz answers 200; RuntimeError if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            exited = f" (exit {process.poll()})" if process is not None else ""
            raise RuntimeError(f"nothing healthy on {url}{exited}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def loopback_if_any(host: str) -> str:
    """The address to reach a server bound to `host` from this machine: a wildcard bind answers on loopback."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
