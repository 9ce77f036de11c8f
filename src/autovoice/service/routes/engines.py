"""``GET /api/v1/engines``: what a conversion can choose from (engines, F0 methods, separation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from autovoice.service.schemas import error_responses
from autovoice.service.state import AdmittedRoute, guard

router = APIRouter(
    prefix="/api/v1", tags=["engines"], responses=error_responses(401, 429), route_class=AdmittedRoute
)


class ChoicePublic(BaseModel):
    name: str
    description: str
    options: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the choice's own options."
    )


class CatalogPublic(BaseModel):
    engines: list[ChoicePublic]
    f0_methods: list[ChoicePublic]
    separation: list[ChoicePublic]
    contents: list[ChoicePublic] = Field(description="What an input is taken as (speech, song) for auto key.")
    presets: list[str]
    metrics_levels: list[str]
    defaults: dict[str, str]


@router.get("/engines", response_model=CatalogPublic, dependencies=[Depends(guard)])
def list_engines() -> CatalogPublic:
    """Engines (with their options' JSON schema), F0 methods, separation backends, presets, report levels."""
    from autovoice.pipeline.catalog import catalog

    return CatalogPublic.model_validate(catalog())
