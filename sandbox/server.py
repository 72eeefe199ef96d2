"""Run the sandbox: in a background thread on a free loopback port (tests, demo, `serve`) or in the foreground."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from sandbox.app import SandboxConfig, create_app
from sandbox.state import SandboxState


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSandbox:
    url: str
    state: SandboxState
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0,
                    config: SandboxConfig | None = None) -> RunningSandbox:
    state = state or SandboxState()
    port = port or free_port(host)
    app = create_app(state, config)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off", timeout_keep_alive=30))
    # The sandbox's deliberate connection drops are faults, not bugs: keep them out of the error log.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return RunningSandbox(url, state, server, thread)
        except httpx.HTTPError:
            time.sleep(0.05)
    server.should_exit = True
    raise RuntimeError(f"sandbox did not start on {url}")


def serve_forever(*, host: str = "127.0.0.1", port: int = 8900, state_file: Path | None = None,
                  seed: int = 0) -> None:
    state = SandboxState(state_file, seed=seed)
    uvicorn.run(create_app(state), host=host, port=port, log_level="info")
