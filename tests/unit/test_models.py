"""Bad input is rejected with an error that names the field; good input passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from models import Analysis, BudgetDecision, Campaign, PlatformCopy, PublishResult, ScheduledPost
from models.events import CreateWithOrchestration, MetaWebhook

CREATIVE = {"video_path": "/tmp/v.mp4"}


def campaign(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "120200000000000001", "name": "A - B", "artist": "A", "song": "B",
                               "daily_budget": 50, "creative": CREATIVE}
    base.update(over)
    return base


def error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.mark.parametrize("budget", [0, -5])
def test_budget_must_be_positive(budget: float) -> None:
    with pytest.raises(ValidationError) as exc:
        Campaign.model_validate(campaign(daily_budget=budget))
    assert "daily_budget" in error_fields(exc.value)


def test_unknown_platform_named() -> None:
    with pytest.raises(ValidationError) as exc:
        Campaign.model_validate(campaign(platforms=["youtube", "myspace"]))
    assert any(f.startswith("platforms") for f in error_fields(exc.value))


def test_duplicate_platform_rejected() -> None:
    with pytest.raises(ValidationError, match="each platform may be listed once"):
        Campaign.model_validate(campaign(platforms=["x", "x"]))


def test_objective_and_country_validated() -> None:
    with pytest.raises(ValidationError) as exc:
        Campaign.model_validate(campaign(objective="CONVERSIONS", targeting={"countries": ["USA"]}))
    assert {"objective", "targeting.countries"} <= error_fields(exc.value)


def test_valid_campaign_defaults() -> None:
    c = Campaign.model_validate(campaign())
    assert c.platforms and c.currency == "USD" and c.targeting.countries == ["US"]


def _analysis(**over: object) -> dict[str, object]:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "campaign_id": "1", "virality_score": 0.5, "model_version": "m", "cold_start": True,
        "recommended_platforms": ["x", "tiktok"], "daily_budget": 100.0,
        "budget_split": {"x": 40.0, "tiktok": 60.0},
        "schedule": [{"platform": "x", "at": now + timedelta(hours=1)}],
        "copy": {"x": {"platform": "x", "text": "hi"}, "tiktok": {"platform": "tiktok", "text": "hi"}},
    }
    base.update(over)
    return base


def test_split_must_add_up() -> None:
    with pytest.raises(ValidationError, match=r"budget_split: adds up to 90\.00"):
        Analysis.model_validate(_analysis(budget_split={"x": 40.0, "tiktok": 50.0}))


def test_split_only_over_recommended_platforms() -> None:
    with pytest.raises(ValidationError, match="budget_split: has platforms not recommended"):
        Analysis.model_validate(_analysis(budget_split={"x": 40.0, "youtube": 60.0}))


def test_score_in_unit_interval() -> None:
    with pytest.raises(ValidationError) as exc:
        Analysis.model_validate(_analysis(virality_score=1.2))
    assert "virality_score" in error_fields(exc.value)


def test_schedule_in_the_past_rejected() -> None:
    with pytest.raises(ValidationError, match="in the past"):
        ScheduledPost(platform="x", at=datetime.now(UTC) - timedelta(hours=1))  # type: ignore[arg-type]


def test_schedule_needs_timezone() -> None:
    with pytest.raises(ValidationError, match="give a time zone"):
        ScheduledPost(platform="x", at=datetime.now() + timedelta(hours=1))  # type: ignore[arg-type]


def test_caption_over_platform_limit() -> None:
    with pytest.raises(ValidationError, match="X allows 280"):
        PlatformCopy(platform="x", text="a" * 281)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="YouTube allows 100"):
        PlatformCopy(platform="youtube", title="t" * 101, text="d")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Instagram allows 2200"):
        PlatformCopy(platform="instagram", text="c" * 2201)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="thread: only X"):
        PlatformCopy(platform="tiktok", text="c", thread=["d"])  # type: ignore[arg-type]


def test_publish_result_status_fields() -> None:
    with pytest.raises(ValidationError, match="post_id"):
        PublishResult(campaign_id="1", platform="x", status="published")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="error"):
        PublishResult(campaign_id="1", platform="x", status="failed")  # type: ignore[arg-type]


def test_budget_decision_after_sums() -> None:
    with pytest.raises(ValidationError, match="after: adds up"):
        BudgetDecision(campaign_id="1", window="w", decided_at=datetime.now(UTC), daily_budget=10,
                       before={}, after={"x": 5.0}, reason="r")  # type: ignore[dict-item]


def test_seed_payload_min_budget_and_platforms() -> None:
    with pytest.raises(ValidationError) as exc:
        CreateWithOrchestration.model_validate({"name": "n", "daily_budget": 5, "artist_name": "a",
                                                "song_name": "s", "platforms": ["vine"]})
    assert {"daily_budget", "platforms.0"} <= error_fields(exc.value)


def test_meta_webhook_launch_signal() -> None:
    hook = MetaWebhook.model_validate({"object": "ad_account", "entry": [{"id": 1, "time": 2, "changes": [
        {"field": "in_process_ad_objects", "value": {"id": "9", "level": "CAMPAIGN", "status_name": "Active"}},
        {"field": "in_process_ad_objects", "value": {"id": "8", "level": "AD_SET"}},
        {"field": "field_changed", "value": {"object_id": "7", "object_type": "campaign"}},
        {"field": "creative_fatigue", "value": {}}]}]})
    assert [c.campaign_to_launch() for c in hook.entry[0].changes] == ["9", None, "7", None]
