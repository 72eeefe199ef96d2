"""Chaos suite fixtures. `make chaos` runs the tests marked `chaos`; the unmarked fast slice runs in `make test`.

Prefect: ONE test harness per session. The harness fixture (`prefect_harness`) lives in
tests/flows/conftest.py, which these tests cannot see, and importing it here would register a second
fixture and start a second server. So `chaos_prefect`, in this order:
1. uses `prefect_harness` if it is visible (if it moves to tests/conftest.py, nothing else is needed);
2. else reuses the harness already running in this process (the chaos tests are moved to the end of the
   run, after the flow and e2e tests started theirs);
3. else (the chaos tests run alone: `make chaos`) starts a local Prefect server as `metacentric serve`
   does, on a fresh PostgreSQL database when 127.0.0.1:5432 answers (a SQLite-backed server makes
   hundreds of concurrent launches queue on its write lock), else on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CHAOS_DIR = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    # Also to be registered in pyproject (see the report); registering twice is harmless.
    config.addinivalue_line("markers", "chaos: the fault suite (minutes); run with -m chaos (make chaos)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Leave `chaos` tests out unless a -m expression is given (as pyproject's addopts will say), and run
    the chaos tests last, so that they find the flow and e2e tests' Prefect harness already up."""
    if not config.option.markexpr:
        heavy = [i for i in items if i.get_closest_marker("chaos")]
        if heavy:
            config.hook.pytest_deselected(items=heavy)
            items[:] = [i for i in items if not i.get_closest_marker("chaos")]
    ours = [i for i in items if CHAOS_DIR in Path(str(i.fspath)).parents]
    if ours:
        items[:] = [i for i in items if CHAOS_DIR not in Path(str(i.fspath)).parents] + ours


def _running_harness_server() -> object | None:
    """The server of a prefect_test_harness active in this process, if any.

    The harness registers its server as SubprocessASGIServer's default instance while it runs (so that
    flow code finds it instead of starting another one); that registration is what we look for.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    server = SubprocessASGIServer._instances.get(None)
    if server is None or not getattr(server, "running", False):
        return None
    return server if PREFECT_API_URL.value() == server.api_url else None


@pytest.fixture(scope="session")
def chaos_prefect(request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's Prefect API URL (see the module docstring for which harness it is)."""
    from prefect.settings import PREFECT_API_URL

    try:
        request.getfixturevalue("prefect_harness")
    except pytest.FixtureLookupError:
        pass
    else:
        yield str(PREFECT_API_URL.value())
        return
    if _running_harness_server() is not None:
        yield str(PREFECT_API_URL.value())
        return
    import tempfile

    from metacentric.prefect_server import prefect_api, prefect_database

    with (tempfile.TemporaryDirectory(prefix="chaos-prefect-") as home,
          prefect_database("metacentric_chaos", "auto") as kind, prefect_api(Path(home), startup_timeout=120) as url):
        print(f"\nchaos: Prefect server at {url} on {kind}")
        yield url


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publish task's retry backoff shortened from (1, 2, 4) s to (0.2, 0.4, 0.8) s.

    For the fast slices only, so they fit in the default suite: what is retried, how often and what a
    retry resumes are unchanged; the big runs keep the product's backoff.
    """
    from tasks.publishing import publish_to_platform

    monkeypatch.setattr(publish_to_platform, "retry_delay_seconds", [0.2, 0.4, 0.8])
