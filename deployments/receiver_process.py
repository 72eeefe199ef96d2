"""The receiver in a process of its own, as `metacentric serve` runs it.

Its acknowledgements then never wait for the interpreter lock of the launches running in the launcher's
process. The two share only the store: the receiver commits each delivery, then rings the launcher's
doorbell (one UDP datagram on loopback) so the launch starts at once; the launcher's poll picks up
anything a lost datagram did not announce.

    python -m deployments.receiver_process --host 127.0.0.1 --port 8000 --doorbell PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any

from pydantic import SecretStr

from deployments.local import loopback_if_any, wait_healthy
from metacentric.settings import Settings


class Doorbell:
    """What the receiver needs of a launcher, from another process: a wake-up call, and a place to run the
    Meta client's coroutines (here, the receiver's own event loop)."""

    def __init__(self, port: int) -> None:
        self._address = ("127.0.0.1", port)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def notify(self) -> None:
        with contextlib.suppress(OSError):  # a full buffer or no launcher yet: its poll finds the delivery
            self._socket.sendto(b"launch", self._address)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return asyncio.ensure_future(coro)


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the METACENTRIC_* environment a child process reads them back from (secrets included:
    the environment of a child is where they already come from)."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"METACENTRIC_{name.upper()}"] = str(value)
    return env


def start_receiver_process(settings: Settings, *, host: str, port: int, doorbell_port: int,
                           log_level: str = "info", timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """Start the receiver process and return once its /healthz answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.receiver_process", "--host", host, "--port", str(port),
         "--doorbell", str(doorbell_port), "--log-level", log_level],
        env={**os.environ, **settings_env(settings)})
    try:
        wait_healthy(f"http://{loopback_if_any(host)}:{port}", process=process, timeout_s=timeout_s)
    except RuntimeError:
        process.kill()
        raise
    return process


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.receiver_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--doorbell", type=int, required=True, help="the launcher's doorbell port (UDP, loopback)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    import uvicorn

    from deployments.receiver import create_receiver
    from metacentric.runtime import quiet_http_logs, resolve_settings
    from metacentric.store import Store
    from platforms.meta import MetaClient

    quiet_http_logs()
    settings = resolve_settings()
    store = Store(settings.db_url)
    app = create_receiver(settings, store, Doorbell(args.doorbell), MetaClient.from_settings(settings, store))
    # Everything imported and built so far lives as long as the process: freeze it out of the collector's
    # sight, and collect the young generation less often. A full collection over FastAPI's, pydantic's,
    # SQLAlchemy's and the SDKs' objects stalled every request in flight for ~80 ms (ack p99 at 20 senders
    # 100-160 ms with it, 40-55 ms without); a request's own garbage is almost all freed by refcounting.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
