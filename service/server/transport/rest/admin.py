"""Operator routes under ``/v1/admin``: ``POST /v1/admin/reload`` re-reads the models folder.

The same reload SIGHUP runs (``DataPlane.reload_models``): every new or changed model is checked as at
start (sha256, the sanity probe, warm-up) before it replaces the old version; one that fails leaves its
old version serving, and the answer says which. With API keys configured the route needs a key like every
``/v1`` route (``service.server.auth.rest``); the keys file has no admin role yet, so any valid key may
reload. Without keys it is open, as the whole API is: a reload only re-reads files the operator placed,
and concurrent calls join one running reload instead of starting more.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.server.auth.authenticator import Authenticator
from service.server.auth.rest import key_dependency
from service.server.plane.dataplane import DataPlane
from service.server.transport.rest.errors import CallScope, route_class
from service.server.transport.rest.schemas import API_PREFIX, ERROR_RESPONSES

METHOD_NAMES = {"reload_models": "ReloadModels"}


class ReloadOut(BaseModel):
    result: str = Field(description="success, partial (some new versions refused) or failure (no change)")
    serving: dict[str, str] = Field(description="model name -> version serving now")
    loaded: dict[str, str] = Field(description="model name -> version taken from this reload")
    kept: dict[str, str] = Field(description="model name -> why its new version was refused (old serves)")
    failed: dict[str, str] = Field(description="model name -> why it failed, with no old version to keep")
    removed: list[str] = Field(description="models dropped because the manifest no longer lists them")
    duration_s: float


def build_admin_router(plane: DataPlane, auth: Authenticator | None = None) -> APIRouter:
    keyed = [Depends(key_dependency(auth))] if auth is not None and auth.enabled else []
    router = APIRouter(
        prefix=f"{API_PREFIX}/admin",
        responses=ERROR_RESPONSES,
        route_class=route_class(plane.metrics, METHOD_NAMES),
        dependencies=keyed,
    )

    @router.post(
        "/reload", response_model=ReloadOut, summary="Reload the style models from the models folder"
    )
    async def reload_models(scope: CallScope) -> ReloadOut:
        """200 with what serves now, also when a new version was refused (``result`` says so)."""
        report = await plane.reload_models()
        return ReloadOut(**{**asdict(report), "removed": list(report.removed)})

    return router
