"""The store's uniqueness rules: one post per (campaign, platform), one launch per campaign, one decision per window."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from metacentric.store import Store
from models import BudgetDecision, PublishResult


def test_post_row_unique_per_campaign_platform(store: Store) -> None:
    threads = [threading.Thread(target=store.claim_post, args=("c1", "youtube")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.claim_post("c1", "x")
    assert sorted(p["platform"] for p in store.posts("c1")) == ["x", "youtube"]


def test_intent_log_round_trip(store: Store) -> None:
    store.claim_post("c1", "tiktok")
    store.save("c1", "tiktok", {"publish_id": "p1", "offset": 10})
    assert store.load("c1", "tiktok") == {"publish_id": "p1", "offset": 10}
    store.record_result(PublishResult(campaign_id="c1", platform="tiktok", status="published", post_id="v1"))  # type: ignore[arg-type]
    row = store.post("c1", "tiktok")
    assert row is not None and row["status"] == "published" and row["post_id"] == "v1"
    assert row["intent"] == {"publish_id": "p1", "offset": 10}  # resume state survives the outcome


def test_launch_claimed_once_under_concurrency(store: Store) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver(i: int) -> None:
        result = store.accept_delivery(f"d{i}", "c9", {"n": i})
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("launch") == 1
    assert outcomes.count("duplicate") == 19
    assert store.accept_delivery("d0", "c9", {}) == "duplicate"  # the same delivery again
    assert len(store.deliveries()) == 20


def test_a_batch_accepts_as_if_one_by_one(store: Store) -> None:
    assert store.accept_delivery("old", "c1", {}) == "launch"
    outcomes = store.accept_deliveries([
        ("a", "c1", {}),  # c1 was claimed before the batch
        ("b", "c2", {}), ("c", "c2", {}),  # the first for c2 in the batch claims it
        ("b", "c2", {}),  # the same delivery twice in one batch
        ("old", "c1", {}),  # a delivery seen before the batch
        ("d", None, {"field": "creative_fatigue"}),
    ])
    assert outcomes == ["duplicate", "launch", "duplicate", "duplicate", "duplicate", "ignored"]
    assert store.launch("c2") == {"campaign_id": "c2", "delivery_id": "b", "flow_run_id": None}
    assert sorted(d["id"] for d in store.deliveries()) == ["a", "b", "c", "d", "old"]


def test_a_batch_that_loses_a_race_falls_back_to_one_by_one(store: Store) -> None:
    # Another process claims c5 between the batch's reads and its writes: the batch is rolled back and
    # each delivery accepted alone, so the others are not lost with it.
    raced = False

    def another_process_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal raced
        if statement.startswith("INSERT INTO launches") and not raced:
            raced = True
            store.accept_delivery("elsewhere", "c5", {})

    event.listen(store.engine, "before_cursor_execute", another_process_first)
    try:
        assert store.accept_deliveries([("x1", "c5", {}), ("x2", "c6", {})]) == ["duplicate", "launch"]
    finally:
        event.remove(store.engine, "before_cursor_execute", another_process_first)
    assert raced
    assert store.launch("c5") == {"campaign_id": "c5", "delivery_id": "elsewhere", "flow_run_id": None}
    assert sorted(d["id"] for d in store.deliveries()) == ["elsewhere", "x1", "x2"]


def test_non_launch_delivery_recorded_not_launched(store: Store) -> None:
    assert store.accept_delivery("e1", None, {"field": "creative_fatigue"}) == "ignored"
    assert store.launch("c1") is None
    assert store.deliveries()[0]["status"] == "ignored"


def test_decision_once_per_window(store: Store) -> None:
    d = BudgetDecision(campaign_id="c1", window="2026-12-01", decided_at=datetime.now(UTC), daily_budget=10,
                       before={"x": 10.0}, after={"x": 10.0}, reason="r")  # type: ignore[dict-item]
    assert store.claim_decision(d) is True
    assert store.claim_decision(d) is False
    assert store.decision("c1", "2026-12-01") == d


def test_token_swap_is_compare_and_set(store: Store) -> None:
    assert store.swap_token("x", "acct", {"access_token": "a"}, None) is True
    _data, version = store.token("x", "acct") or ({}, 0)
    assert store.swap_token("x", "acct", {"access_token": "b"}, version) is True
    assert store.swap_token("x", "acct", {"access_token": "c"}, version) is False  # stale version loses
    assert (store.token("x", "acct") or ({}, 0))[0] == {"access_token": "b"}


def test_postgres_store_when_available() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({type(exc).__name__})")
    pg = Store("postgresql://postgres@127.0.0.1:5432/postgres")
    suffix = datetime.now(UTC).strftime("%H%M%S%f")
    assert pg.accept_delivery(f"pg-{suffix}", f"c-{suffix}", {}) == "launch"
    assert pg.accept_delivery(f"pg2-{suffix}", f"c-{suffix}", {}) == "duplicate"
