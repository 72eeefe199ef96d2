"""A local Prefect server for `demo` and `serve` when none is configured (PREFECT_API_URL unset).

It is Prefect's own server (the same one `prefect server start` runs) in a subprocess, with its SQLite
database under var/, so the runs, logs and artifacts stay visible in the UI while the process lives.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `path` while a child process is spawned, so it inherits them."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, "ab") as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@contextmanager
def prefect_api(home: Path, *, startup_timeout: int = 90) -> Iterator[str]:
    """Yield the Prefect API URL: the configured one, or a temporary local server's."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Its own SQLite file unless a database is configured (PostgreSQL: see README, "Deploying").
    os.environ.setdefault("PREFECT_SERVER_DATABASE_CONNECTION_URL",
                          f"sqlite+aiosqlite:///{home.resolve() / 'prefect.db'}")

    import prefect.settings
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    # Code that asks for "the ephemeral server" during flow runs must find this one, not start another.
    SubprocessASGIServer._instances[None] = server
    with _output_to(home / "server.log"):  # the server's own output (and shutdown noise) goes to a file
        server.start(timeout=startup_timeout)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with prefect.settings.temporary_settings(updates={prefect.settings.PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def prefect_database(name: str, kind: str = "auto") -> Iterator[str]:
    """Choose the database of the Prefect server that `prefect_api` starts next (benchmarks, chaos runs).

    "sqlite": its own file (the laptop default). "postgres": a fresh database `name` on the local
    PostgreSQL (127.0.0.1:5432, user postgres), dropped afterwards. "auto": postgres when reachable.
    Yields the kind chosen. Under many concurrent flow runs a SQLite-backed server answers slowly
    (its writers queue on one lock; creating a flow run took up to 35 s with 16 launches at once),
    while on PostgreSQL the same 16 launches finished in 9-14 s.
    """
    conn: Any = None
    if kind in ("auto", "postgres"):
        try:
            import psycopg

            conn = psycopg.connect(f"{LOCAL_POSTGRES}/postgres", autocommit=True, connect_timeout=3)
            kind = "postgres"
        except Exception:
            if kind == "postgres":
                raise
            kind = "sqlite"
    if conn is None:
        os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        yield "sqlite"
        return
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
            f"postgresql+asyncpg://{LOCAL_POSTGRES.removeprefix('postgresql://')}/{name}")
        try:
            yield "postgres"
        finally:
            os.environ.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
