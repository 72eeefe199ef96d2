"""The durable store: SQLite file by default, PostgreSQL by URL. Tables are created at start.

Every "do it once" rule of the product is a unique key here, claimed with an insert: a second claim
fails with IntegrityError, whatever process or thread makes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from metacentric.tables import (
    AnalysisRow,
    Base,
    BudgetDecisionRow,
    CampaignRow,
    LaunchRow,
    MetricSnapshotRow,
    ModelVersionRow,
    PlatformLimitRow,
    PostRow,
    TokenRow,
    WebhookDeliveryRow,
)
from models import Analysis, BudgetDecision, Campaign, PublishResult

Delivery = tuple[str, str | None, dict[str, Any]]  # (delivery id, campaign to launch or None, payload)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # With WAL, NORMAL still never corrupts; a power cut may lose the last commits, not a crash of this process.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def _insert_once(self, row: Base) -> bool:
        """Insert a row whose key must be unique; False if it already existed."""
        try:
            with self.session() as s:
                s.add(row)
            return True
        except IntegrityError:
            return False

    # campaigns -------------------------------------------------------------------------------------
    def save_campaign(self, campaign: Campaign, *, auto_optimize: bool = True) -> None:
        with self.session() as s:
            row = s.get(CampaignRow, campaign.id)
            if row is None:
                s.add(CampaignRow(id=campaign.id, data=campaign.model_dump(mode="json"), auto_optimize=auto_optimize))
            else:
                row.data = campaign.model_dump(mode="json")

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            return Campaign.model_validate(row.data) if row else None

    def campaign_state(self, campaign_id: str) -> str | None:
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            return row.state if row else None

    def set_campaign_state(self, campaign_id: str, state: str) -> None:
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is not None:
                row.state = state

    def campaign_ids(self, *, optimizable_only: bool = False) -> list[str]:
        with self.session() as s:
            q = select(CampaignRow.id).order_by(CampaignRow.created_at)
            if optimizable_only:
                q = q.where(CampaignRow.auto_optimize.is_(True), CampaignRow.state == "COMPLETED")
            return list(s.scalars(q))

    # analyses --------------------------------------------------------------------------------------
    def save_analysis(self, analysis: Analysis, features: dict[str, Any] | None = None) -> None:
        with self.session() as s:
            s.add(AnalysisRow(campaign_id=analysis.campaign_id, data=analysis.model_dump(mode="json", by_alias=True),
                              features=features or {}))

    def latest_analysis(self, campaign_id: str) -> Analysis | None:
        with self.session() as s:
            row = s.scalars(select(AnalysisRow).where(AnalysisRow.campaign_id == campaign_id)
                            .order_by(AnalysisRow.id.desc()).limit(1)).first()
            # Stored analyses are history: their schedule may be in the past now, so skip the "future" check.
            return Analysis.model_validate(row.data, context={"now": _EPOCH}) if row else None

    def analyses_with_features(self) -> list[tuple[str, dict[str, Any], datetime]]:
        with self.session() as s:
            rows = s.scalars(select(AnalysisRow).order_by(AnalysisRow.id)).all()
            return [(r.campaign_id, r.features, r.created_at) for r in rows]

    # posts: the publish intent log -----------------------------------------------------------------
    def _post(self, s: Session, campaign_id: str, platform: str) -> PostRow:
        row = s.scalars(select(PostRow).where(PostRow.campaign_id == campaign_id, PostRow.platform == platform)
                        .with_for_update()).first()
        if row is None:
            raise KeyError(f"no post row for {campaign_id}/{platform}; call claim_post first")
        return row

    def claim_post(self, campaign_id: str, platform: str) -> None:
        """Make sure the (campaign, platform) row exists; the unique key keeps it single."""
        self._insert_once(PostRow(campaign_id=campaign_id, platform=platform, intent={}))

    def post(self, campaign_id: str, platform: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.scalars(select(PostRow).where(PostRow.campaign_id == campaign_id,
                                                  PostRow.platform == platform)).first()
            return _post_dict(row) if row else None

    def posts(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            q = select(PostRow).order_by(PostRow.id)
            if campaign_id is not None:
                q = q.where(PostRow.campaign_id == campaign_id)
            return [_post_dict(r) for r in s.scalars(q)]

    def load(self, campaign_id: str, platform: str) -> dict[str, Any]:
        with self.session() as s:
            return dict(self._post(s, campaign_id, platform).intent)

    def save(self, campaign_id: str, platform: str, state: dict[str, Any]) -> None:
        with self.session() as s:
            self._post(s, campaign_id, platform).intent = dict(state)

    def record_result(self, result: PublishResult) -> None:
        with self.session() as s:
            row = self._post(s, result.campaign_id, result.platform.value)
            row.status = result.status.value
            row.post_id = result.post_id
            row.url = result.url
            row.error = result.error
            row.deferred_until = result.deferred_until
            row.attempts = row.attempts + result.attempts

    # metrics ---------------------------------------------------------------------------------------
    def upsert_snapshot(self, campaign_id: str, platform: str, kind: str, day: str, data: dict[str, Any]) -> None:
        with self.session() as s:
            row = s.scalars(select(MetricSnapshotRow).where(
                MetricSnapshotRow.campaign_id == campaign_id, MetricSnapshotRow.platform == platform,
                MetricSnapshotRow.kind == kind, MetricSnapshotRow.day == day)).first()
            if row is None:
                s.add(MetricSnapshotRow(campaign_id=campaign_id, platform=platform, kind=kind, day=day, data=data))
            else:
                row.data = data

    def snapshots(self, campaign_id: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            q = select(MetricSnapshotRow).order_by(MetricSnapshotRow.day, MetricSnapshotRow.id)
            if campaign_id is not None:
                q = q.where(MetricSnapshotRow.campaign_id == campaign_id)
            if kind is not None:
                q = q.where(MetricSnapshotRow.kind == kind)
            return [{"campaign_id": r.campaign_id, "platform": r.platform, "kind": r.kind, "day": r.day, **r.data}
                    for r in s.scalars(q)]

    # budget decisions (the audit log) --------------------------------------------------------------
    def claim_decision(self, decision: BudgetDecision) -> bool:
        """Record a decision for its window; False if that window was already decided."""
        return self._insert_once(BudgetDecisionRow(
            campaign_id=decision.campaign_id, window=decision.window, outcome=decision.outcome.value,
            data=decision.model_dump(mode="json"), decided_at=decision.decided_at))

    def update_decision(self, decision: BudgetDecision) -> None:
        with self.session() as s:
            row = s.scalars(select(BudgetDecisionRow).where(BudgetDecisionRow.campaign_id == decision.campaign_id,
                                                            BudgetDecisionRow.window == decision.window)).one()
            row.outcome = decision.outcome.value
            row.data = decision.model_dump(mode="json")

    def decision(self, campaign_id: str, window: str) -> BudgetDecision | None:
        with self.session() as s:
            row = s.scalars(select(BudgetDecisionRow).where(BudgetDecisionRow.campaign_id == campaign_id,
                                                            BudgetDecisionRow.window == window)).first()
            return BudgetDecision.model_validate(row.data) if row else None

    def decisions(self, campaign_id: str) -> list[BudgetDecision]:
        with self.session() as s:
            rows = s.scalars(select(BudgetDecisionRow).where(BudgetDecisionRow.campaign_id == campaign_id)
                             .order_by(BudgetDecisionRow.decided_at, BudgetDecisionRow.id)).all()
            return [BudgetDecision.model_validate(r.data) for r in rows]

    # webhook deliveries and launches ---------------------------------------------------------------
    def record_delivery(self, delivery_id: str, kind: str, campaign_id: str | None, payload: dict[str, Any],
                        status: str = "received") -> bool:
        return self._insert_once(WebhookDeliveryRow(id=delivery_id, kind=kind, campaign_id=campaign_id,
                                                    payload=payload, status=status))

    def mark_delivery(self, delivery_id: str, status: str, flow_run_id: str | None = None) -> None:
        with self.session() as s:
            row = s.get(WebhookDeliveryRow, delivery_id)
            if row is not None:
                row.status = status
                row.flow_run_id = flow_run_id or row.flow_run_id

    def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        with self.session() as s:
            q = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.received_at)
            if status is not None:
                q = q.where(WebhookDeliveryRow.status == status)
            return [{"id": r.id, "kind": r.kind, "campaign_id": r.campaign_id, "status": r.status,
                     "payload": r.payload, "flow_run_id": r.flow_run_id} for r in s.scalars(q)]

    def accept_delivery(self, delivery_id: str, campaign_id: str | None, payload: dict[str, Any]) -> str:
        """Record a webhook delivery and, in the same transaction, claim the campaign's launch.

        Returns "launch" (first delivery for this campaign: launch it), "duplicate" (the campaign was
        already claimed, or this exact delivery was seen) or "ignored" (not a launch signal). One
        transaction means a crash cannot leave a claimed launch without its delivery, or the reverse.
        """
        return self.accept_deliveries([(delivery_id, campaign_id, payload)])[0]

    def accept_deliveries(self, deliveries: Sequence[Delivery]) -> list[str]:
        """`accept_delivery` for many deliveries in one transaction, outcomes in order (the receiver's group
        commit: one commit for every request that arrived while the last one was being written).

        Within the batch the first delivery for a campaign claims it, as if they had come one by one. If
        another process wins a race meanwhile, the transaction is rolled back: a batch is then accepted one
        by one, a single delivery looks again (three times, then it is a duplicate).
        """
        for _ in range(3):
            try:
                return self._accept_batch(deliveries)
            except IntegrityError:
                if len(deliveries) > 1:
                    return [self.accept_delivery(*d) for d in deliveries]
        return ["duplicate"]

    def _accept_batch(self, deliveries: Sequence[Delivery]) -> list[str]:
        ids = {d[0] for d in deliveries}
        campaigns = {d[1] for d in deliveries if d[1] is not None}
        # Core statements, not ORM objects: this runs for every webhook, and the ORM's unit of work cost
        # more than the SQL itself.
        with self.engine.begin() as conn:
            seen = set(conn.scalars(select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.id.in_(ids))))
            claimed = set(conn.scalars(select(LaunchRow.campaign_id).where(LaunchRow.campaign_id.in_(campaigns))))
            outcomes: list[str] = []
            new_deliveries: list[dict[str, Any]] = []
            new_launches: list[dict[str, Any]] = []
            for delivery_id, campaign_id, payload in deliveries:
                if delivery_id in seen:
                    outcomes.append("duplicate")
                    continue
                seen.add(delivery_id)
                if campaign_id is None:
                    kind = "ignored"
                elif campaign_id in claimed:
                    kind = "duplicate"
                else:
                    kind = "launch"
                    claimed.add(campaign_id)
                    new_launches.append({"campaign_id": campaign_id, "delivery_id": delivery_id})
                new_deliveries.append({"id": delivery_id, "kind": kind, "campaign_id": campaign_id,
                                       "payload": payload, "status": "received" if kind == "launch" else "ignored"})
                outcomes.append(kind)
            if new_launches:
                conn.execute(insert(LaunchRow), new_launches)
            if new_deliveries:
                conn.execute(insert(WebhookDeliveryRow), new_deliveries)
        return outcomes

    def claim_launch(self, campaign_id: str, delivery_id: str) -> bool:
        """True for the first delivery that asks to launch this campaign, False for every later one."""
        return self._insert_once(LaunchRow(campaign_id=campaign_id, delivery_id=delivery_id))

    def set_launch_flow_run_if_missing(self, campaign_id: str, flow_run_id: str) -> None:
        with self.session() as s:
            row = s.get(LaunchRow, campaign_id)
            if row is not None and row.flow_run_id is None:
                row.flow_run_id = flow_run_id

    def launch(self, campaign_id: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(LaunchRow, campaign_id)
            return ({"campaign_id": row.campaign_id, "delivery_id": row.delivery_id, "flow_run_id": row.flow_run_id}
                    if row else None)

    # tokens ----------------------------------------------------------------------------------------
    def token(self, platform: str, account: str) -> tuple[dict[str, Any], int] | None:
        with self.session() as s:
            row = s.get(TokenRow, (platform, account))
            return (dict(row.data), row.version) if row else None

    def swap_token(self, platform: str, account: str, data: dict[str, Any], expected_version: int | None) -> bool:
        """Store a newer token atomically: only if nobody stored one since `expected_version` was read."""
        if expected_version is None:
            return self._insert_once(TokenRow(platform=platform, account=account, data=data, version=1))
        with self.session() as s:
            row = s.get(TokenRow, (platform, account), with_for_update=True)
            if row is None or row.version != expected_version:
                return False
            row.data = data
            row.version = expected_version + 1
            return True

    # platform limits (quota / rate-window knowledge shared by every client process) ----------------
    def limit(self, platform: str, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(PlatformLimitRow, (platform, key))
            return dict(row.data) if row else None

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None:
        with self.session() as s:
            row = s.get(PlatformLimitRow, (platform, key))
            if row is None:
                s.add(PlatformLimitRow(platform=platform, key=key, data=data))
            else:
                row.data = data

    # model versions --------------------------------------------------------------------------------
    def save_model(self, version: str, source: str, metrics: dict[str, Any], blob: str, promoted: bool) -> None:
        with self.session() as s:
            if promoted:
                for row in s.scalars(select(ModelVersionRow).where(ModelVersionRow.promoted.is_(True))):
                    row.promoted = False
            s.merge(ModelVersionRow(version=version, source=source, metrics=metrics, blob=blob, promoted=promoted))

    def promoted_model(self) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.promoted.is_(True))).first()
            return ({"version": row.version, "source": row.source, "metrics": row.metrics, "blob": row.blob}
                    if row else None)

    def model_versions(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(ModelVersionRow).order_by(ModelVersionRow.created_at)).all()
            return [{"version": r.version, "source": r.source, "metrics": r.metrics, "promoted": r.promoted}
                    for r in rows]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _post_dict(row: PostRow) -> dict[str, Any]:
    return {"campaign_id": row.campaign_id, "platform": row.platform, "status": row.status, "post_id": row.post_id,
            "url": row.url, "error": row.error, "deferred_until": row.deferred_until, "intent": dict(row.intent),
            "attempts": row.attempts}
