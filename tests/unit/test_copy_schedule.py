"""Copy within every platform's limits, platform recommendation, and post scheduling (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.copywriter import split_thread, write_copy, x_length
from intelligence.recommend import recommend
from intelligence.schedule import default_hour_of_week, learn_hour_of_week, schedule
from models import Campaign, Creative, Platform, ScheduledPost
from models.platform import INSTAGRAM_HASHTAGS_MAX, X_POST_MAX, YOUTUBE_TITLE_MAX

platforms = st.sampled_from(list(Platform))
names = st.text(min_size=1, max_size=200)  # any unicode: emoji, CJK, RTL, control characters
zones = st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "Pacific/Chatham",
                         "America/Sao_Paulo", "Europe/London"])
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


# copy ---------------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(artist=names, song=names, genre=st.text(max_size=40),
       release=st.none() | st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10))
def test_copy_fits_every_platform_for_any_names(artist: str, song: str, genre: str,
                                                release: str | None) -> None:
    campaign = Campaign(id="1", name="n", artist=artist, song=song, daily_budget=10, release_date=release,
                        creative=Creative(video_path="v.mp4", genre=genre))
    for platform in Platform:
        copy = write_copy(campaign, platform)  # the PlatformCopy validators have run
        assert copy.platform is platform
        assert all(tag and tag.isalnum() and not tag.isdigit() for tag in copy.hashtags)
        assert len(copy.hashtags) <= INSTAGRAM_HASHTAGS_MAX
        if platform is Platform.YOUTUBE:
            assert copy.title and len(copy.title) <= YOUTUBE_TITLE_MAX
            assert "<" not in copy.title + copy.text and ">" not in copy.title + copy.text
        if platform is Platform.X:
            assert all(x_length(post) <= X_POST_MAX for post in [copy.text, *copy.thread])


def test_youtube_title_style() -> None:
    campaign = Campaign(id="1", name="n", artist="Nova", song="Orbit", daily_budget=10,
                        creative=Creative(video_path="v.mp4"))
    assert write_copy(campaign, Platform.YOUTUBE).title == "Nova - Orbit (Official Video)"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=400), min_size=1,
                max_size=6).map(". ".join))
def test_thread_keeps_every_word_and_cuts_at_sentences_first(text: str) -> None:
    posts = split_thread(text)
    assert all(0 < x_length(p) <= X_POST_MAX for p in posts)
    assert "".join("".join(posts).split()) == "".join(text.split())


def test_thread_prefers_sentence_boundaries() -> None:
    sentences = [f"Sentence number {i} is about the new single and nothing else at all." for i in range(12)]
    posts = split_thread(" ".join(sentences))
    assert len(posts) > 1
    assert all(p.endswith(".") for p in posts)


# recommend ----------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(wanted=st.lists(platforms, min_size=1, unique=True),
       predicted=st.dictionaries(platforms, st.floats(0, 1e6)),
       unavailable=st.dictionaries(platforms, st.text(max_size=20)))
def test_recommend_chooses_only_wanted_available_and_explains_the_rest(
        wanted: list[Platform], predicted: dict[Platform, float], unavailable: dict[Platform, str]) -> None:
    chosen, skipped = recommend(wanted, predicted, unavailable)
    assert set(chosen) <= set(wanted) - set(unavailable)
    assert len(chosen) == len(set(chosen))
    assert set(chosen) | set(skipped) == set(wanted) and not set(chosen) & set(skipped)
    assert all(skipped.values())
    for platform in set(wanted) & set(unavailable):
        assert skipped[platform] == (unavailable[platform] or "unavailable")
    assert bool(chosen) == bool(set(wanted) - set(unavailable))


def test_recommend_drops_a_negligible_platform_but_keeps_the_best() -> None:
    chosen, skipped = recommend(list(Platform), {Platform.TIKTOK: 1000, Platform.YOUTUBE: 400,
                                                 Platform.INSTAGRAM: 600, Platform.X: 3}, {})
    assert chosen == [Platform.TIKTOK, Platform.INSTAGRAM, Platform.YOUTUBE]
    assert "under 5%" in skipped[Platform.X]
    assert recommend([Platform.X], {Platform.X: 0.0}, {}) == ([Platform.X], {})


# schedule -----------------------------------------------------------------------------------------
existing_posts = st.lists(st.tuples(platforms, st.integers(-48 * 60, 8 * 24 * 60)), max_size=12)


@settings(max_examples=120, deadline=None)
@given(chosen=st.lists(platforms, min_size=1, max_size=4, unique=True), now=moments, zone=zones,
       existing=existing_posts, quota=st.dictionaries(platforms, st.integers(0, 3)),
       spacing=st.integers(1, 240).map(lambda m: timedelta(minutes=m)))
def test_schedule_is_future_spaced_and_within_quota(chosen: list[Platform], now: datetime, zone: str,
                                                    existing: list[tuple[Platform, int]],
                                                    quota: dict[Platform, int], spacing: timedelta) -> None:
    before = [ScheduledPost.model_validate({"platform": p, "at": now + timedelta(minutes=m)},
                                           context={"now": now - timedelta(days=3)}) for p, m in existing]
    posts = schedule(chosen, now, zone, None, min_spacing=spacing, daily_quota=quota,
                     already_scheduled=before)
    assert [p.platform for p in posts] == [p for p in chosen if p in {q.platform for q in posts}]
    everything = before + posts
    for post in posts:
        assert now <= post.at < now + timedelta(days=7)
        same = [q.at for q in everything if q.platform is post.platform and q is not post]
        assert all(abs(post.at - t) >= spacing for t in same)
        if post.platform in quota:
            day = post.at.astimezone(UTC).date()
            same_day = [q for q in everything
                        if q.platform is post.platform and q.at.astimezone(UTC).date() == day]
            assert len(same_day) <= quota[post.platform]
    # Only a quota can leave a platform out (spacing always leaves room within a week).
    for platform in set(chosen) - {p.platform for p in posts}:
        assert platform in quota


def test_default_schedule_picks_the_evening_peak_in_the_audiences_zone() -> None:
    now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday
    (post,) = schedule([Platform.TIKTOK], now, "America/Los_Angeles", None)
    local = post.at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert 18 <= local.hour <= 22 and post.at.minute == 0
    assert schedule([Platform.TIKTOK, Platform.X], now, "UTC", None, immediate=True)[1].at == now


def test_learned_profile_moves_the_schedule() -> None:
    monday_9am = datetime(2026, 3, 2, 9, tzinfo=UTC)
    observations = [(Platform.YOUTUBE, monday_9am - timedelta(weeks=w), 5000.0) for w in range(1, 6)]
    observations += [(Platform.YOUTUBE, monday_9am - timedelta(weeks=w, hours=h), 100.0)
                     for w in range(1, 6) for h in range(1, 30, 3)]
    learned = learn_hour_of_week(observations, "UTC")
    assert set(learned) == set(Platform)
    assert learned[Platform.X] == default_hour_of_week(Platform.X)
    assert max(range(168), key=learned[Platform.YOUTUBE].__getitem__) == 9  # Monday 09:00
    assert abs(sum(learned[Platform.YOUTUBE]) / 168 - 1) < 1e-9
    (post,) = schedule([Platform.YOUTUBE], monday_9am - timedelta(days=1), "UTC", learned)
    assert post.at == monday_9am


def test_spacing_moves_a_post_just_past_an_existing_one() -> None:
    now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    (first,) = schedule([Platform.TIKTOK], now, "UTC", None)
    (second,) = schedule([Platform.TIKTOK], now, "UTC", None, already_scheduled=[first],
                         min_spacing=timedelta(minutes=45))
    assert second.at == first.at + timedelta(minutes=45)
    # Spacing is per platform: another platform's post at the same moment does not move it.
    (alone,) = schedule([Platform.YOUTUBE], now, "UTC", None)
    tiktok_then = ScheduledPost.model_validate({"platform": Platform.TIKTOK, "at": alone.at},
                                               context={"now": now})
    assert schedule([Platform.YOUTUBE], now, "UTC", None, already_scheduled=[tiktok_then]) == [alone]
