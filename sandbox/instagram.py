"""PLACEHOLDER: the Instagram fake is being written; this file only lets the app import."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from sandbox.graph import GraphCall
from sandbox.state import SandboxState


class _Nothing:
    platform = "instagram"

    def owns(self, call: GraphCall) -> bool:
        return False

    def endpoint(self, call: GraphCall) -> str:
        return "*"

    async def handle(self, call: GraphCall) -> Response:
        raise NotImplementedError


def handler(state: SandboxState, config: Any) -> _Nothing:
    return _Nothing()


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    return None


def published(state: SandboxState) -> list[dict[str, Any]]:
    return []
