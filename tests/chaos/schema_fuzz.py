"""schemathesis against the receiver's own OpenAPI schema (/openapi.json), as an outsider would see it.

The receiver reads raw bodies (its signature covers the exact bytes), so FastAPI's schema has no request
bodies or auth headers. We add them from the pydantic contracts the receiver validates with, so
schemathesis generates bodies that fit them (positive) and bodies that do not (negative). Requests go out
over real HTTP. Every call must answer below 500. Nothing is signed or authorised except negative-mode
webhook bodies, which are also sent correctly signed: those must be refused (4xx) like anything malformed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from models.events import CampaignCreated, CreateWithOrchestration, MetaWebhook
from tests.chaos.world import World, sign

SIGNED = {"/webhooks/meta": MetaWebhook, "/webhook/campaign-created": CampaignCreated}
BODIES = {**SIGNED, "/campaigns/create-with-orchestration": CreateWithOrchestration}
EXAMPLES_PER_MODE = 60


@dataclass
class Report:
    calls: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "answers": dict(sorted(self.statuses.items())), "failures": len(self.failures)}


def augmented_schema(base: dict[str, Any]) -> dict[str, Any]:
    schema = json.loads(json.dumps(base))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, model in BODIES.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        op = schema["paths"][path]["post"]
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
        header = "x-hub-signature-256" if path in SIGNED else "authorization"
        op["parameters"] = [{"name": header, "in": "header", "required": False, "schema": {"type": "string"}}]
        op["responses"] = {"200": {"description": "accepted"}}
    schema["paths"]["/webhooks/meta"]["get"]["parameters"] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("hub.mode", "hub.verify_token", "hub.challenge")]
    return schema


def probe(http: httpx.Client, world: World, report: Report, operation: Any, mode: Any, *, signed: bool) -> None:
    """Up to EXAMPLES_PER_MODE generated requests for one operation in one mode."""
    from schemathesis.core import NotSet

    @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), sign_it=st.booleans())
    def one(case: Any, sign_it: bool) -> None:
        headers = {k: str(v) for k, v in (case.headers or {}).items()}
        content = None
        if case.body is not None and not isinstance(case.body, NotSet):
            body = case.body
            content = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
            headers["content-type"] = case.media_type or "application/json"
        signing = signed and sign_it and content is not None
        if signing:
            headers["x-hub-signature-256"] = sign(world.webhook_secret, content or b"")
        try:
            r = http.request(case.method, case.formatted_path, params=case.query or None, headers=headers,
                             content=content)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
            return  # nothing a client library would put on the wire
        report.calls += 1
        label = f"{case.method} {operation.path} {mode.value}{' signed' if signing else ''}"
        report.statuses[f"{label} {r.status_code}"] += 1
        if r.status_code >= 500 or (signing and r.status_code not in (200, 400, 413, 422)):
            report.failures.append(f"{label} -> {r.status_code}: {r.text[:200]} body={(content or b'')[:200]!r}")

    try:
        one()
    except Unsatisfiable:  # e.g. a negative request for an operation that takes no input at all
        report.statuses[f"{operation.method.upper()} {operation.path} {mode.value} (nothing to generate)"] += 1


def run_schemathesis(world: World) -> Report:
    import schemathesis
    from schemathesis.generation.modes import GenerationMode

    base = httpx.get(f"{world.receiver_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(augmented_schema(base))
    report = Report()
    with httpx.Client(base_url=world.receiver_url, timeout=60) as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                probe(http, world, report, operation, mode, signed=mode is GenerationMode.NEGATIVE
                      and operation.path in SIGNED)
    return report
