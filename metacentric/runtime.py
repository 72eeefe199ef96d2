"""The composition root: settings, store and clients, built once per process and handed to tasks.

Flows call `get_runtime()`; nothing else constructs a client. Tests and the demo call `configure()` with
their own settings first (e.g. pointed at an in-process sandbox).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from metacentric.settings import Settings, get_settings
from metacentric.store import Store
from platforms.factory import Clients, build_clients


class SandboxNotRunning(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    store: Store
    clients: Clients


_runtime: Runtime | None = None


def resolve_settings(settings: Settings | None = None) -> Settings:
    """Settings with the sandbox wired in when in sandbox mode."""
    settings = settings or get_settings()
    if settings.mode == "sandbox":
        url = settings.sandbox_url or os.environ.get("METACENTRIC_SANDBOX_URL", "")
        if not url:
            raise SandboxNotRunning(
                "sandbox mode needs a running sandbox: start one with `metacentric sandbox --port 8900` and set "
                "METACENTRIC_SANDBOX_URL=http://127.0.0.1:8900 (or use `metacentric serve`/`demo`, which start one)")
        settings = settings.for_sandbox(url)
    settings.check_live()
    return settings


def quiet_http_logs() -> None:
    """httpx/httpcore log request URLs at INFO, and some platforms put credentials in URLs (TikTok's
    upload_token, Graph's access_token): keep those loggers at WARNING whatever the app's level."""
    for name in ("httpx", "httpcore", "urllib3", "googleapiclient.discovery"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(settings: Settings | None = None, store: Store | None = None) -> Runtime:
    global _runtime
    quiet_http_logs()
    resolved = resolve_settings(settings)
    store = store or Store(resolved.db_url)
    _runtime = Runtime(resolved, store, build_clients(resolved, store))
    return _runtime


def get_runtime() -> Runtime:
    return _runtime or configure()


def reset() -> None:
    global _runtime
    _runtime = None
