"""Meta Marketing API client: the campaign, its per-platform ad sets and budgets, insights, webhooks.

Uses the official facebook-business SDK (synchronous; each call runs in a worker thread) against
settings.meta_graph_url, so the same code talks to graph.facebook.com or the sandbox. Graph POSTs have no
idempotency keys, so creates look up by exact name first and, when a create's answer is lost, look again
before ever creating again; budget and status updates set values, so they are simply retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any, TypeVar

from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.adset import AdSet
from facebook_business.adobjects.application import Application
from facebook_business.adobjects.campaign import Campaign

from metacentric.settings import Settings
from models import AdMetrics, Platform
from platforms.errors import AmbiguousWriteError, PermanentError, TransientError
from platforms.meta_api import LimitStore, UsageGate, build_api
from platforms.meta_errors import PLATFORM, TIMEOUT_CODE, translate
from platforms.meta_mapping import AD_SET_PREFIX, meta_targeting, parse_rows

T = TypeVar("T")

READ_TRIES = 3
WRITE_TRIES = 3
ASYNC_AFTER_DAYS = 7  # longer windows go through an async report run, as Meta recommends
CAMPAIGN_FIELDS = ["id", "name", "status", "effective_status", "objective", "daily_budget", "adlabels",
                   "created_time"]
AD_SET_FIELDS = ["id", "name", "status", "daily_budget"]
INSIGHT_FIELDS = ["campaign_id", "adset_id", "adset_name", "spend", "impressions", "actions",
                  "video_play_actions"]
# Currencies whose Graph amounts are whole units (Meta's currency offset 1); all others are cents.
WHOLE_UNIT_CURRENCIES = {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}


def _bind(fn: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    """fn with its arguments fixed now (a lambda in a loop would see the loop's last values)."""
    return lambda: fn(**kwargs)


def _all_rows(run: AdReportRun) -> list[dict[str, Any]]:
    return [r.export_all_data() for r in run.get_result()]


def ad_set_name(platform: str) -> str:
    return AD_SET_PREFIX + Platform(platform).value  # ValueError for anything that is not a Platform


class MetaClient:
    platform = PLATFORM

    def __init__(self, *, app_id: str, app_secret: str, access_token: str, ad_account_id: str,
                 graph_url: str = "https://graph.facebook.com", api_version: str = "v25.0",
                 store: LimitStore | None = None, timeout: float = 30.0, poll_interval_s: float = 3.0,
                 poll_timeout_s: float = 600.0) -> None:
        self.app_id = app_id
        self.account_id = ad_account_id.removeprefix("act_")
        self.gate = UsageGate(f"act_{self.account_id}", store)
        self._api = build_api(graph_url=graph_url, api_version=api_version, app_id=app_id,
                              app_secret=app_secret, access_token=access_token, timeout=timeout,
                              gate=self.gate)
        self._secrets = [access_token, app_secret, getattr(self._api._session, "appsecret_proof", "")]
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self._currency: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: LimitStore | None = None) -> MetaClient:
        return cls(app_id=settings.meta_app_id, app_secret=settings.meta_app_secret.get_secret_value(),
                   access_token=settings.meta_access_token.get_secret_value(),
                   ad_account_id=settings.meta_ad_account_id, graph_url=settings.meta_graph_url,
                   api_version=settings.meta_api_version, store=store,
                   poll_interval_s=settings.poll_interval_s, poll_timeout_s=settings.poll_timeout_s)

    @property
    def _account(self) -> AdAccount:
        return AdAccount(f"act_{self.account_id}", api=self._api)

    # calling the SDK ---------------------------------------------------------------------------------
    async def _once(self, fn: Callable[[], T], *, write: bool, kind: str = "ads_management") -> T:
        self.gate.check(kind)
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:  # translated right here, once; nothing else sees SDK or requests errors
            raise translate(exc, write=write, secrets=self._secrets) from None

    async def _read(self, fn: Callable[[], T], kind: str = "ads_management") -> T:
        """A read, retried a few times over passing faults (short waits; throttles are not waited out)."""
        for attempt in range(READ_TRIES):
            try:
                return await self._once(fn, write=False, kind=kind)
            except TransientError as exc:
                if attempt == READ_TRIES - 1:
                    raise
                await asyncio.sleep(exc.retry_after or 0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def _set(self, fn: Callable[[], Any]) -> None:
        """A write that sets values (budget, status, subscription): repeating it is harmless."""
        for attempt in range(WRITE_TRIES):
            try:
                await self._once(fn, write=True)
                return
            except (TransientError, AmbiguousWriteError) as exc:
                if attempt == WRITE_TRIES - 1:
                    raise
                await asyncio.sleep(getattr(exc, "retry_after", None) or 0.2 * 2**attempt)

    async def _create_once(self, lookup: Callable[[], Awaitable[str | None]],
                           create: Callable[[], Any]) -> str:
        """Create unless `lookup` finds the object; after a lost answer, look before creating again."""
        for attempt in range(WRITE_TRIES):
            try:
                created = await self._once(create, write=True)
                if not created.get("id"):  # a "success" without the id tells us nothing: go and look
                    raise AmbiguousWriteError(PLATFORM, "create answered without an id", code="no_id")
                return str(created["id"])
            except AmbiguousWriteError as exc:
                found = await lookup()
                if found is not None:
                    return found
                # A timed-out request may still be running on Meta's side and land after our look-up:
                # only a connection that closed (the server is done with it) makes "not found" final.
                if exc.code == TIMEOUT_CODE or attempt == WRITE_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _minor_per_unit(self) -> int:
        if self._currency is None:
            data = await self._read(lambda: self._account.api_get(fields=["currency"]).export_all_data())
            self._currency = str(data.get("currency") or "USD")
        return 1 if self._currency in WHOLE_UNIT_CURRENCIES else 100

    # campaigns -----------------------------------------------------------------------------------------
    async def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        data = await self._read(lambda: Campaign(campaign_id, api=self._api).api_get(fields=CAMPAIGN_FIELDS)
                                .export_all_data())
        per_unit = await self._minor_per_unit()
        budget = data.get("daily_budget")
        return {"id": str(data["id"]), "name": data.get("name"), "status": data.get("status"),
                "effective_status": data.get("effective_status"), "objective": data.get("objective"),
                "daily_budget": int(budget) / per_unit if budget else None, "currency": self._currency,
                "labels": [str(label.get("name")) for label in data.get("adlabels") or []],
                "created_time": data.get("created_time")}

    async def find_campaign(self, name: str) -> str | None:
        """The id of the campaign with exactly this name (newest if several), or None."""
        params = {"filtering": [{"field": "name", "operator": "EQUAL", "value": name}]}
        found = await self._read(lambda: [c.export_all_data() for c in
                                          self._account.get_campaigns(fields=["id", "name"], params=params)])
        exact = [c for c in found if c.get("name") == name]
        return str(exact[0]["id"]) if exact else None

    async def create_campaign(self, name: str, daily_budget: float, objective: str = "OUTCOME_ENGAGEMENT",
                              status: str = "ACTIVE", labels: Sequence[str] = ()) -> str:
        """Create the campaign named `name` once; the name must be unique to the launch (it is the key)."""
        existing = await self.find_campaign(name)
        if existing is not None:
            return existing
        params: dict[str, Any] = {
            "name": name, "objective": objective, "status": status, "special_ad_categories": [],
            "daily_budget": round(daily_budget * await self._minor_per_unit()),
            **({"adlabels": [{"name": label} for label in labels]} if labels else {})}
        return await self._create_once(lambda: self.find_campaign(name),
                                       lambda: self._account.create_campaign(params=params))

    async def update_campaign(self, campaign_id: str, *, daily_budget: float | None = None,
                              status: str | None = None, name: str | None = None) -> None:
        params: dict[str, Any] = {"status": status, "name": name}
        if daily_budget is not None:
            params["daily_budget"] = round(daily_budget * await self._minor_per_unit())
        params = {k: v for k, v in params.items() if v is not None}
        if params:
            await self._set(lambda: Campaign(campaign_id, api=self._api).api_update(params=params))

    # ad sets -------------------------------------------------------------------------------------------
    async def _ad_sets(self, campaign_id: str) -> dict[str, dict[str, Any]]:
        """Metacentric's ad sets of the campaign, by platform."""
        campaign = Campaign(campaign_id, api=self._api)
        rows = await self._read(lambda: [a.export_all_data()
                                         for a in campaign.get_ad_sets(fields=AD_SET_FIELDS)])
        return {str(r["name"]).removeprefix(AD_SET_PREFIX): r for r in rows
                if str(r.get("name", "")).startswith(AD_SET_PREFIX)}

    async def ensure_ad_sets(self, campaign_id: str, platforms: list[str],
                             targeting: dict[str, Any] | None = None,
                             budget: float | None = None) -> dict[str, str]:
        """One ad set per platform ("metacentric:<platform>"), created only where none exists yet.

        `targeting` is a Graph targeting spec or Metacentric's Targeting as a dict (see meta_targeting).

        New ad sets start with an even share of the campaign's daily budget (or of `budget` when the
        campaign has none of its own); set_ad_set_budgets moves it afterwards.
        """
        names = {p: ad_set_name(p) for p in platforms}
        existing = await self._ad_sets(campaign_id)
        missing = [p for p in platforms if p not in existing]
        ids = {p: str(existing[p]["id"]) for p in platforms if p in existing}
        if not missing:
            return ids
        campaign = await self.get_campaign(campaign_id)
        share = (campaign["daily_budget"] or budget or 0) / len(platforms)
        per_unit = await self._minor_per_unit()
        for p in missing:
            params: dict[str, Any] = {
                "name": names[p], "campaign_id": campaign_id, "billing_event": "IMPRESSIONS",
                "optimization_goal": "POST_ENGAGEMENT", "targeting": meta_targeting(targeting),
                "status": "ACTIVE"}
            if share:
                params["daily_budget"] = max(per_unit, round(share * per_unit))
            ids[p] = await self._create_once(self._ad_set_lookup(campaign_id, p), self._ad_set_create(params))
        return ids

    def _ad_set_lookup(self, campaign_id: str, platform: str) -> Callable[[], Awaitable[str | None]]:
        async def lookup() -> str | None:
            found = (await self._ad_sets(campaign_id)).get(platform)
            return None if found is None else str(found["id"])
        return lookup

    def _ad_set_create(self, params: dict[str, Any]) -> Callable[[], Any]:
        return lambda: self._account.create_ad_set(params=params)

    async def ad_set_budgets(self, campaign_id: str) -> dict[str, float]:
        """Daily budget per platform in major units; a paused ad set spends nothing and reads 0."""
        per_unit = await self._minor_per_unit()
        return {p: (int(a.get("daily_budget") or 0) / per_unit if a.get("status") == "ACTIVE" else 0.0)
                for p, a in (await self._ad_sets(campaign_id)).items()}

    async def set_ad_set_budgets(self, campaign_id: str, split: dict[str, float]) -> None:
        """Set each platform's daily budget (major units). Zero pauses the ad set; a budget resumes it.
        A zero for a platform with no ad set needs nothing: it spends nothing already."""
        ad_sets = await self._ad_sets(campaign_id)
        split = {p: v for p, v in split.items() if p in ad_sets or v > 0}
        unknown = sorted(set(split) - set(ad_sets))
        if unknown:
            raise PermanentError(PLATFORM, f"campaign {campaign_id} has no ad set for {', '.join(unknown)}; "
                                           "call ensure_ad_sets first")
        per_unit = await self._minor_per_unit()
        for platform, amount in split.items():
            params: dict[str, Any] = ({"status": "PAUSED"} if amount <= 0 else
                                      {"daily_budget": round(amount * per_unit), "status": "ACTIVE"})
            ad_set = AdSet(str(ad_sets[platform]["id"]), api=self._api)
            await self._set(_bind(ad_set.api_update, params=params))

    # insights ------------------------------------------------------------------------------------------
    async def insights(self, campaign_id: str, since: date, until: date, *,
                       use_async: bool | None = None) -> list[AdMetrics]:
        """Daily delivery per platform ad set. Async report runs for long windows (or when asked)."""
        params = {"level": "adset", "time_increment": 1,
                  "time_range": {"since": since.isoformat(), "until": until.isoformat()}}
        if use_async is None:
            use_async = (until - since).days + 1 > ASYNC_AFTER_DAYS
        campaign = Campaign(campaign_id, api=self._api)
        if use_async:
            rows = await self._report_run(campaign, params)
        else:
            rows = await self._read(lambda: [r.export_all_data() for r in
                                             campaign.get_insights(fields=INSIGHT_FIELDS, params=params)],
                                    kind="ads_insights")
        return parse_rows(campaign_id, rows)

    async def _report_run(self, obj: Campaign, params: dict[str, Any]) -> list[dict[str, Any]]:
        """POST the report, poll it to completion, read its rows. A failed job is re-run once."""
        for attempt in range(2):
            start = _bind(obj.get_insights, fields=INSIGHT_FIELDS, params=params, is_async=True)
            run: AdReportRun = await self._read(start, kind="ads_insights")
            status = await self._wait_for(run)
            if status == "Job Completed":
                return await self._read(_bind(_all_rows, run=run), kind="ads_insights")
            if attempt == 1:
                raise TransientError(PLATFORM, f"insights report run ended in {status!r} twice", code="-2")
        raise AssertionError("unreachable")

    async def _wait_for(self, run: AdReportRun) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_timeout_s
        fields = [AdReportRun.Field.async_status, AdReportRun.Field.async_percent_completion]
        while True:
            data = await self._read(lambda: run.api_get(fields=fields).export_all_data(), kind="ads_insights")
            status = str(data.get("async_status"))
            if status in ("Job Completed", "Job Failed", "Job Skipped"):
                return status
            if loop.time() >= deadline:
                raise TransientError(PLATFORM, f"insights report run still {status!r} "
                                               f"({data.get('async_percent_completion')}%) after "
                                               f"{self.poll_timeout_s:g}s", code="report_timeout")
            await asyncio.sleep(self.poll_interval_s)

    # webhooks ------------------------------------------------------------------------------------------
    async def subscribe_webhooks(self, callback_url: str, verify_token: str) -> None:
        """Subscribe the app to ad-account webhooks (Meta checks the callback first), then install the app
        on the ad account so its events flow. Both calls set state, so repeating them is harmless."""
        app_params = {"object": "ad_account", "callback_url": callback_url, "verify_token": verify_token,
                      "fields": ["in_process_ad_objects", "with_issues_ad_objects"], "include_values": True}
        app = Application(self.app_id, api=self._api)
        await self._set(lambda: app.create_subscription(params=app_params))
        await self._set(lambda: self._account.create_subscribed_app(params={"app_id": self.app_id}))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._api._session.requests.close)
