"""The dashboard in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) via Selenium.

The receiver runs with a real Store, a Launcher and the session's sandbox (Meta over real HTTP). The
campaign shown is written through the store API (the rows the launch and optimize flows write), so the
test needs no Prefect server; the form's new campaign is created on the sandbox's Meta and its launch
waits in the store's inbox, as it does whenever Prefect is not reachable.

Skips, saying what to install, when Chromium, chromedriver or selenium are missing.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver && .venv/bin/pip install -e '.[browser]'"
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(f"no Chromium/chromedriver on PATH (install: {INSTALL})", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason=f"selenium is not installed (install: {INSTALL})")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from deployments import receiver as receiver_module  # noqa: E402
from deployments.launcher import Launcher  # noqa: E402
from deployments.receiver import create_receiver  # noqa: E402
from metacentric.settings import Settings  # noqa: E402
from metacentric.store import Store  # noqa: E402
from models import (  # noqa: E402
    Analysis,
    BudgetDecision,
    Campaign,
    Creative,
    DecisionOutcome,
    Platform,
    PlatformCopy,
    PublishResult,
    PublishStatus,
    ScheduledPost,
)
from platforms.meta import MetaClient  # noqa: E402
from sandbox.server import RunningSandbox, free_port  # noqa: E402

API_TOKEN = "e2e-dashboard-token"
CAMPAIGN_ID = "120200000000777001"
ARTIST, SONG = 'Nova <b>Reyes</b> & "Co"', "Midnight Static"  # markup in names must show as text
PLATFORMS = [p.value for p in Platform]
DAYS = ["2026-12-01", "2026-12-02", "2026-12-03"]
SCREENSHOT = Path("/tmp/dashboard.png")


@pytest.fixture
def app_url(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    settings = Settings(var_dir=tmp_path, api_token=API_TOKEN).for_sandbox(sandbox.url)
    store = Store(settings.db_url)
    seed_campaign(store, tmp_path)
    meta = MetaClient.from_settings(settings, store)
    # The launcher's loop runs (the receiver creates the Meta campaign on it) but its pump does not, so
    # accepted launches wait in the store's inbox instead of starting a flow (no Prefect server here).
    launcher = Launcher(store)
    loop_thread = threading.Thread(target=launcher.loop.run_forever, name="launcher-loop", daemon=True)
    loop_thread.start()
    monkeypatch.setattr(receiver_module, "ANALYSIS_WAIT_S", 0.4)  # no launch runs, so no analysis comes
    server = uvicorn.Server(uvicorn.Config(create_receiver(settings, store, launcher, meta), host="127.0.0.1",
                                           port=free_port(), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, name="receiver", daemon=True).start()
    url = f"http://127.0.0.1:{server.config.port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url, store
    server.should_exit = True
    launcher.submit(meta.aclose()).result(10)
    launcher.loop.call_soon_threadsafe(launcher.loop.stop)
    loop_thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1280,2600", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def seed_campaign(store: Store, tmp_path: Path) -> None:
    """One launched campaign with three days of metrics and five budget decisions, as the flows record them."""
    store.save_campaign(Campaign(id=CAMPAIGN_ID, name=f"{ARTIST} - {SONG}", artist=ARTIST, song=SONG,
                                 daily_budget=100, creative=Creative(video_path=str(tmp_path / "v.mp4"))))
    store.set_campaign_state(CAMPAIGN_ID, "COMPLETED")
    soon = datetime.now(UTC) + timedelta(hours=1)
    store.save_analysis(Analysis(
        campaign_id=CAMPAIGN_ID, virality_score=0.64, model_version="f1-test", cold_start=True,
        predicted_engagement={p: 500.0 + 100 * i for i, p in enumerate(Platform)},
        recommended_platforms=list(Platform), daily_budget=100,
        budget_split={Platform.YOUTUBE: 30, Platform.TIKTOK: 30, Platform.INSTAGRAM: 25, Platform.X: 15},
        schedule=[ScheduledPost(platform=p, at=soon) for p in Platform],
        copy={p: PlatformCopy(platform=p, title="Midnight Static" if p is Platform.YOUTUBE else None, text="Out now")
              for p in Platform}))
    for i, p in enumerate(Platform):
        store.claim_post(CAMPAIGN_ID, p.value)
        store.record_result(PublishResult(campaign_id=CAMPAIGN_ID, platform=p, status=PublishStatus.PUBLISHED,
                                          post_id=f"post-{p.value}", url=f"https://{p.value}.example/post-{i}"))
        for d, day in enumerate(DAYS):
            store.upsert_snapshot(CAMPAIGN_ID, p.value, "ad", day, {
                "spend": 20.0 + i, "impressions": 4000, "video_views": 900 + 100 * d,
                "engagements": 40 * (i + 1) + 15 * d})
            store.upsert_snapshot(CAMPAIGN_ID, p.value, "post", day, {
                "post_id": f"post-{p.value}", "views": 500 * (d + 1), "likes": 30 * (d + 1), "comments": 4 * (d + 1),
                "shares": 2 * (d + 1), "saves": d + 1, "watch_time_s": 100.0 * (d + 1)})
    splits: list[tuple[str, dict[str, float], DecisionOutcome, str | None, str | None]] = [
        (log_launch_window(), {"youtube": 30, "tiktok": 30, "instagram": 25, "x": 15},
         DecisionOutcome.APPLIED, None, None),
        (DAYS[0], {"youtube": 28, "tiktok": 34, "instagram": 24, "x": 14}, DecisionOutcome.APPLIED, None, None),
        (DAYS[1], {"youtube": 20, "tiktok": 45, "instagram": 24, "x": 11}, DecisionOutcome.NOT_APPLIED, None,
         "no approval within 3600 s"),
        (DAYS[2], {"youtube": 26, "tiktok": 38, "instagram": 25, "x": 11}, DecisionOutcome.APPLIED, "prefect-ui",
         None),
    ]
    before: dict[str, float] = {}
    start = datetime.now(UTC) - timedelta(hours=1)
    for n, (window, after, outcome, approved_by, detail) in enumerate(splits):
        decision = BudgetDecision(campaign_id=CAMPAIGN_ID, window=window, decided_at=start + timedelta(minutes=n),
                                  daily_budget=100, before=before, after=after,  # type: ignore[arg-type]
                                  reason=f"step {n}: more to what returns more per $", outcome=outcome,
                                  approved_by=approved_by, detail=detail)
        store.claim_decision(decision)
        if outcome in (DecisionOutcome.APPLIED, DecisionOutcome.UNCHANGED):
            before = after


def log_launch_window() -> str:
    return "launch:" + ",".join(sorted(PLATFORMS))


def wait_for(driver: WebDriver, css: str, timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def chart_lines(driver: WebDriver, section: str) -> dict[str, str]:
    svg = driver.find_element(By.CSS_SELECTOR, f"#{section} svg.chart")
    return {g.get_attribute("data-series"): g.find_element(By.CSS_SELECTOR, "path.line").get_attribute("d")
            for g in svg.find_elements(By.CSS_SELECTOR, "g.series")}


def test_campaign_dashboard_draws_charts_posts_score_and_decision_log(
        app_url: tuple[str, Store], browser: WebDriver) -> None:
    url, _ = app_url
    browser.get(f"{url}/campaigns/{CAMPAIGN_ID}/dashboard")
    wait_for(browser, "#budget-chart svg.chart")

    assert browser.find_element(By.TAG_NAME, "h1").text == f"{ARTIST} - {SONG}"  # shown as text, not markup
    assert not browser.find_elements(By.CSS_SELECTOR, "h1 b")
    for section, points in (("budget-chart", 4), ("engagement-chart", len(DAYS))):
        lines = chart_lines(browser, section)
        assert set(lines) == set(PLATFORMS), section  # one line per platform
        assert all(d and d.count("L") == points - 1 for d in lines.values()), (section, lines)
        box = browser.find_element(By.CSS_SELECTOR, f"#{section} svg.chart").rect
        assert box["width"] > 400 and box["height"] > 150  # really laid out, not collapsed
    rings = browser.find_elements(By.CSS_SELECTOR, "#budget-chart circle.ring")
    assert len(rings) >= len(PLATFORMS)  # the not-applied proposal is marked (plus the legend's ring)

    rows = browser.find_elements(By.CSS_SELECTOR, "#publishing tbody tr")
    assert [r.get_attribute("data-platform") for r in rows] == PLATFORMS
    link = browser.find_element(By.CSS_SELECTOR, '#publishing tr[data-platform="tiktok"] a')
    assert link.get_attribute("href") == "https://tiktok.example/post-1" and link.text == "post-tiktok"
    assert browser.find_element(By.ID, "virality-score").text == "0.64"
    log = browser.find_elements(By.CSS_SELECTOR, "#decision-log tbody tr")
    assert [r.get_attribute("data-window") for r in log] == [DAYS[2], DAYS[1], DAYS[0], log_launch_window()]
    not_applied = browser.find_element(By.CSS_SELECTOR, f'#decision-log tr[data-window="{DAYS[1]}"]').text
    assert "not applied" in not_applied and "no approval within 3600 s" in not_applied
    assert "prefect-ui" in browser.find_element(By.CSS_SELECTOR, f'#decision-log tr[data-window="{DAYS[2]}"]').text
    assert API_TOKEN not in browser.page_source
    browser.save_screenshot(str(SCREENSHOT))


def test_overview_form_creates_a_campaign_and_shows_field_errors(
        app_url: tuple[str, Store], browser: WebDriver) -> None:
    url, store = app_url
    browser.get(f"{url}/dashboard")
    link = wait_for(browser, f'#campaigns tr[data-campaign-id="{CAMPAIGN_ID}"] a')
    assert link.get_attribute("href") == f"{url}/campaigns/{CAMPAIGN_ID}/dashboard"
    assert link.text == f"{ARTIST} - {SONG}"

    def fill(artist: str, song: str, budget: str, token: str) -> None:
        for name, value in (("artist", artist), ("song", song), ("daily_budget", budget), ("token", token)):
            field = browser.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        browser.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()

    song = f"Browser Test {time.time_ns()}"  # Meta campaign names are the launch's key: keep it new
    fill("Dashboard Artist", song, "5", API_TOKEN)  # below the minimum: the API's 422, next to the field
    error = WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.ID, "error-daily_budget").text or None)
    assert "10" in error
    assert browser.find_element(By.ID, "input-daily_budget").get_attribute("aria-invalid") == "true"

    fill("Dashboard Artist", song, "40", "not-the-token")
    assert WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "error-token").text or None)
    assert len(store.campaign_ids()) == 1  # neither attempt created anything

    browser.find_element(By.CSS_SELECTOR, 'input[name=platforms][value="x"]').click()  # launch on three
    fill("Dashboard Artist", song, "40", API_TOKEN)
    created = wait_for(browser, "#created-campaign-id", timeout=20).text
    assert created.isdigit() and created != CAMPAIGN_ID
    assert not browser.find_element(By.ID, "error-daily_budget").text  # old errors are cleared
    campaign = store.get_campaign(created)
    assert campaign is not None and campaign.name == f"Dashboard Artist - {song}" and campaign.daily_budget == 40
    assert [p.value for p in campaign.platforms] == ["youtube", "tiktok", "instagram"]
    assert [d["campaign_id"] for d in store.deliveries(status="received")] == [created]  # waiting for the launcher
    browser.save_screenshot(str(SCREENSHOT.with_name("dashboard-overview.png")))

    browser.find_element(By.ID, "created-campaign-link").click()
    WebDriverWait(browser, 15).until(lambda d: d.current_url.endswith(f"/campaigns/{created}/dashboard"))
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Dashboard Artist - {song}"
    assert "no budget decisions yet" in browser.find_element(By.ID, "budget-chart").text
