"""Publishing one platform: once, resumably, with the outcome recorded whatever happens.

The (campaign, platform) row in the store is the intent log. A re-run finds a published row and
returns it; a row with saved resume state (session URI, publish id, container id, media id) makes the
client resume instead of writing again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from metacentric.store import Store
from models import Campaign, PlatformPlan, PublishResult, PublishStatus
from platforms.base import PublishedPost, PublishingClient
from platforms.errors import (
    AuthExpiredError,
    PermanentError,
    PlatformError,
    QuotaExhaustedError,
    RateLimitedError,
)
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, PLATFORM_RETRY_JITTER, retry_if_retriable

# A rate limit that frees up sooner than this is waited out in the task; a longer one defers the post.
SHORT_WAIT = timedelta(seconds=60)
SHORT_LIMIT_WAITS = 5  # per attempt

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def already_done(store: Store, plan: PlatformPlan, now: datetime) -> PublishResult | None:
    """The recorded outcome if publishing this platform again must not happen (yet)."""
    row = store.post(plan.campaign_id, plan.platform.value)
    if row is None:
        return None
    if row["status"] == PublishStatus.PUBLISHED.value:
        return PublishResult(campaign_id=plan.campaign_id, platform=plan.platform, status=PublishStatus.PUBLISHED,
                             post_id=row["post_id"], url=row["url"], attempts=0)
    deferred = row["deferred_until"]
    if row["status"] == PublishStatus.SCHEDULED.value and deferred is not None:
        deferred = deferred if deferred.tzinfo else deferred.replace(tzinfo=UTC)
        if deferred > now:
            return PublishResult(campaign_id=plan.campaign_id, platform=plan.platform,
                                 status=PublishStatus.SCHEDULED, deferred_until=deferred, attempts=0)
    return None


def deferred(plan: PlatformPlan, until: datetime, why: str) -> PublishResult:
    return PublishResult(campaign_id=plan.campaign_id, platform=plan.platform, status=PublishStatus.SCHEDULED,
                         deferred_until=until, error=f"scheduled for {until.isoformat()}: {why}")


def failed(plan: PlatformPlan, error: BaseException | str) -> PublishResult:
    return PublishResult(campaign_id=plan.campaign_id, platform=plan.platform, status=PublishStatus.FAILED,
                         error=str(error) or type(error).__name__)


async def publish_waiting_out_short_limits(client: PublishingClient, plan: PlatformPlan, video_path: str,
                                           store: Store, clock: Clock) -> PublishedPost:
    """client.publish, with rate limits that free up within SHORT_WAIT waited out here and the publish
    resumed (from the intent log), up to SHORT_LIMIT_WAITS times.

    Not left to Prefect's retries: their backoff (seconds) is shorter than most windows, the clients
    refuse early until a window frees, and a window one post ran into stops every post in the process,
    so each of them would spend its retries before the window turned over.
    """
    for _ in range(SHORT_LIMIT_WAITS):
        try:
            return await client.publish(plan, video_path, store)
        except RateLimitedError as exc:
            wait = (exc.until - clock()).total_seconds()
            if wait > SHORT_WAIT.total_seconds():
                raise
            get_run_logger().info("%s: rate limited; waiting %.0f s for the window", plan.platform, wait)
            await asyncio.sleep(max(0.0, wait))
    return await client.publish(plan, video_path, store)


@task(name="publish", retries=PLATFORM_RETRIES, retry_delay_seconds=PLATFORM_RETRY_DELAYS,
      retry_jitter_factor=PLATFORM_RETRY_JITTER, retry_condition_fn=retry_if_retriable, cache_policy=NO_CACHE)
async def publish_to_platform(client: PublishingClient, store: Store, campaign: Campaign,
                              plan: PlatformPlan, publish_now: bool = True, clock: Clock = wall_clock) -> PublishResult:
    """Publish the campaign's video on one platform. Retries (by Prefect) only on retriable errors.

    `clock` tells the platforms' time (the sandbox's in sandbox mode): the limits' windows are in it.
    """
    logger = get_run_logger()
    now = clock()
    store.claim_post(plan.campaign_id, plan.platform.value)
    done = already_done(store, plan, now)
    if done is not None:
        logger.info("%s: already %s, nothing to do", plan.platform, done.status)
        return done
    if not publish_now and plan.scheduled_at is not None and plan.scheduled_at > now + timedelta(minutes=1):
        result = deferred(plan, plan.scheduled_at, "the posting schedule's best time")
        store.record_result(result)
        return result
    try:
        post = await publish_waiting_out_short_limits(client, plan, campaign.creative.video_path, store, clock)
    except QuotaExhaustedError as exc:
        result = deferred(plan, exc.until, exc.message)
    except RateLimitedError as exc:
        if exc.until - clock() > SHORT_WAIT:
            result = deferred(plan, exc.until, exc.message)
        else:
            raise  # short limits kept coming: retried by Prefect after a backoff
    except (PermanentError, AuthExpiredError) as exc:
        result = failed(plan, exc)
    except PlatformError as exc:
        logger.warning("%s: %s (will retry if attempts remain)", plan.platform, exc)
        raise
    else:
        result = PublishResult(campaign_id=plan.campaign_id, platform=plan.platform,
                               status=PublishStatus.PUBLISHED, post_id=post.post_id, url=post.url)
    store.record_result(result)
    logger.info("%s: %s %s", plan.platform, result.status, result.post_id or result.error or "")
    return result
