"""Shared pieces of the Meta Marketing API fake: errors, ids, times, fields, filtering, paging, usage.

Everything here follows the Graph API's wire habits (reference/platform_apis.md §1): numbers that are
money or counts travel as strings, object times as ISO-8601 with an offset, edges page with opaque
cursors and carry `paging.next` only when there is more.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fastapi.responses import JSONResponse, Response

from sandbox.graph import GraphCall, graph_error, usage_header
from sandbox.state import SandboxState
from sandbox.wire import fields_param, json_param

NS = "meta"
DEFAULT_LIMIT = 25
MAX_LIMIT = 500


class MetaError(Exception):
    """A Graph error raised anywhere in a Meta handler; `handle` renders it in the Graph envelope."""

    def __init__(self, code: int, message: str, *, subcode: int | None = None, status: int = 400,
                 type_: str = "OAuthException", user_title: str | None = None,
                 transient: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode, self.status = code, message, subcode, status
        self.type_, self.user_title, self.transient = type_, user_title, transient

    def response(self) -> JSONResponse:
        extra = None
        if self.user_title:
            extra = {"error_user_title": self.user_title, "error_user_msg": self.message}
        return graph_error(self.code, self.message, status=self.status, subcode=self.subcode,
                           type_=self.type_, is_transient=self.transient, extra=extra)


def bad_param(message: str, subcode: int | None = None) -> MetaError:
    return MetaError(100, f"(#100) {message}", subcode=subcode)


def ns(state: SandboxState) -> dict[str, Any]:
    data = state.ns(NS)
    for key in ("campaigns", "adsets", "runs", "subscriptions", "subscribed_apps", "usage"):
        data.setdefault(key, {})
    for key in ("in_process", "outbox", "webhook_log"):
        data.setdefault(key, [])
    return data


def graph_id(state: SandboxState, prefix: str, width: int) -> str:
    """Numeric-looking string ids like Meta's (campaign/ad set ids start 1202..., report runs are shorter)."""
    return f"{prefix}{int(state.new_id()):0{width}d}"


def fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def sim_day(t: float) -> date:
    """The calendar day (the sandbox's ad account reports in UTC) that sim time `t` falls in."""
    return datetime.fromtimestamp(t, UTC).date()


def day_end(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86400


def money(minor: int | None) -> str:
    """Budgets travel as strings of minor units ("5000" = 50.00 USD); an unset budget reads "0"."""
    return str(minor or 0)


def minor_units(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        amount = int(str(value))
    except ValueError:
        raise bad_param(f"Param {name} must be an integer in the currency's minor units") from None
    if amount < 100:
        raise MetaError(100, f"(#100) The {name} is too low: it must be at least 100 (1.00 USD) a day",
                        subcode=1885272, user_title="Your budget is too low")
    return amount


def requested_fields(call: GraphCall, allowed: set[str], default: list[str], node_type: str) -> list[str]:
    fields = fields_param(call.params.get("fields")) or default
    for f in fields:
        if f not in allowed:
            raise bad_param(f"Tried accessing nonexisting field ({f}) on node type ({node_type})")
    return fields


def select(view: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Graph returns only the fields asked for, plus `id`, and omits those that have no value."""
    out = {"id": view["id"]}
    out.update({f: view[f] for f in fields if view.get(f) is not None})
    return out


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL": lambda a, b: str(a) == str(b),
    "NOT_EQUAL": lambda a, b: str(a) != str(b),
    "IN": lambda a, b: str(a) in {str(x) for x in (b if isinstance(b, list) else [b])},
    "NOT_IN": lambda a, b: str(a) not in {str(x) for x in (b if isinstance(b, list) else [b])},
    "CONTAIN": lambda a, b: str(b).lower() in str(a).lower(),
    "NOT_CONTAIN": lambda a, b: str(b).lower() not in str(a).lower(),
}


def apply_filtering(call: GraphCall, views: list[dict[str, Any]],
                    fields: dict[str, str]) -> list[dict[str, Any]]:
    """`filtering=[{"field","operator","value"}]`; `fields` maps filter names to view keys."""
    rules = json_param(call.params.get("filtering"), [])
    if not isinstance(rules, list):
        raise bad_param("Param filtering must be an array")
    for rule in rules:
        if not isinstance(rule, dict) or {"field", "operator"} - rule.keys():
            raise bad_param("Each filtering entry needs field, operator and value")
        key = fields.get(str(rule["field"]))
        op = _OPERATORS.get(str(rule["operator"]))
        if key is None:
            raise bad_param(f"Filtering field {rule['field']} is invalid", subcode=1487078)
        if op is None:
            raise bad_param(f"Filtering operator {rule['operator']} is invalid")
        views = [v for v in views if op(v.get(key), rule.get("value"))]
    statuses = json_param(call.params.get("effective_status"))
    if isinstance(statuses, list):
        views = [v for v in views if v.get("effective_status") in statuses]
    elif not any(isinstance(r, dict) and r.get("field") in ("effective_status", "status") for r in rules):
        views = [v for v in views if v.get("status") != "DELETED"]  # Graph hides deleted objects unless asked
    return views


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.removeprefix("sandbox:"))
    except (ValueError, UnicodeDecodeError):
        raise bad_param("Invalid cursor: after") from None


def page(call: GraphCall, items: list[dict[str, Any]], *, summary: bool = True) -> dict[str, Any]:
    """One page of an edge. `next` appears only when more follow (the SDK's Cursor stops without it)."""
    try:
        limit = max(1, min(MAX_LIMIT, int(call.params.get("limit") or DEFAULT_LIMIT)))
    except ValueError:
        raise bad_param("Param limit must be an integer") from None
    start = _offset(call.params["after"]) if call.params.get("after") else 0
    chunk = items[start:start + limit]
    body: dict[str, Any] = {"data": chunk}
    if chunk:
        body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}}
        if start + len(chunk) < len(items):
            after = _cursor(start + len(chunk))
            body["paging"]["next"] = str(call.request.url.include_query_params(after=after))
    if summary and str(call.params.get("summary", "")).lower() in ("true", "1"):
        body["summary"] = {"total_count": len(items)}
    return body


def ok(body: Any) -> JSONResponse:
    return JSONResponse(body)


# Business-use-case usage ----------------------------------------------------------------------------
WINDOW_S = 3600.0  # BUC quotas are a rolling hour


def record_usage(state: SandboxState, limits: dict[str, Any], account: str,
                 kind: str) -> tuple[int, int, bool]:
    """Count this call against (account, kind); returns (percent used, minutes to regain, over the limit)."""
    now = state.clock.time()
    key = f"{account}|{kind}"
    calls = [t for t in ns(state)["usage"].get(key, []) if t > now - WINDOW_S]
    limit = int(limits.get(f"{kind}_per_hour", 5000))
    over = len(calls) >= limit
    if not over:
        calls.append(now)
    ns(state)["usage"][key] = calls
    pct = min(100, round(100 * len(calls) / max(1, limit)))
    regain = 0
    if over and calls:
        regain = max(1, int((calls[0] + WINDOW_S - now) // 60) + 1)
    return pct, regain, over


def throttled(kind: str, account: str, pct: int, regain: int) -> Response:
    code = 80000 if kind == "ads_insights" else 80004
    what = "ads insights" if kind == "ads_insights" else "this ad-account"
    return graph_error(code, f"(#{code}) There have been too many calls to {what}. Wait a bit and try again.",
                       subcode=2446079, is_transient=True, headers=usage_header(account, kind, pct, regain))


def with_usage(response: Response, account: str, kind: str, pct: int, regain: int) -> Response:
    for name, value in usage_header(account, kind, pct, regain).items():
        response.headers[name] = value
    return response


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
