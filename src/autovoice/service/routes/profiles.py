"""``/api/v1/profiles``: upload recordings and/or a trained model to build a profile; list, show, delete;
a profile's trained models (``/api/v1/profiles/{id}/models``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from autovoice.service import services
from autovoice.service.schemas import (
    ProfileList,
    ProfilePublic,
    TrainedModelList,
    TrainedModelPublic,
    error_responses,
)
from autovoice.service.state import AdmittedRoute, State, guard, job_limit
from autovoice.service.uploads import receive_multipart

router = APIRouter(
    route_class=AdmittedRoute,
    prefix="/api/v1/profiles",
    tags=["profiles"],
    dependencies=[Depends(guard)],
    responses=error_responses(401, 404, 422, 429),
)
ProfileId = Annotated[str, Path(max_length=80, description="A profile id, `prof_...`.")]
ModelId = Annotated[str, Path(max_length=80, description="A trained model's id, `mdl_...`.")]


def _binary(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "binary", "minLength": 1, "description": description}


#: The trained model's parts of a multipart body (``POST .../models``, and optionally ``POST /profiles``).
_MODEL_PARTS: dict[str, Any] = {
    "model": _binary("A trained model: RVC / Applio `.pth`, or so-vits-svc `G_*.pth`."),
    "index": _binary("The RVC model's FAISS `.index` (optional)."),
    "config": _binary("The so-vits-svc model's `config.json` (required for so-vits-svc)."),
    "cluster": _binary("A so-vits-svc cluster or feature-retrieval model (optional)."),
}
_MODEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "additionalProperties": False,
                    "properties": _MODEL_PARTS,
                }
            }
        },
    }
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    # Recordings, a trained model, or both; a model's companions need the model.
                    "anyOf": [{"required": ["files"]}, {"required": ["model"]}],
                    "dependentRequired": {"index": ["model"], "config": ["model"], "cluster": ["model"]},
                    "additionalProperties": False,
                    "properties": {
                        "name": {
                            "type": "string",
                            "pattern": r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$",
                            "description": "Letters, digits, spaces, '_', '-', '.'; a letter or digit first.",
                        },
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary", "minLength": 1},
                            "description": "Recordings of one voice (10 s to a few minutes in all).",
                        },
                        **_MODEL_PARTS,
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=ProfilePublic,
    dependencies=[Depends(job_limit)],
    openapi_extra=_UPLOAD_BODY,
    responses=error_responses(409, 413, 415),
)
async def create_profile(request: Request, state: State) -> ProfilePublic:
    """Build a voice profile from uploaded recordings (multipart: `name`, one or more `files`) and/or a
    trained model (`model`, with `index`, `config`, `cluster` as it needs); a profile made from a model
    alone converts with a manual pitch (auto key needs recordings)."""
    scratch = await run_in_threadpool(state.blobs.scratch_dir)
    try:
        form = await receive_multipart(
            request,
            scratch,
            file_fields={"files", *services.MODEL_FILE_FIELDS},
            max_file_bytes=state.settings.max_upload_bytes,
            max_files=state.settings.max_upload_files,
            files_setting="AUTOVOICE_MAX_UPLOAD_FILES",
        )
        summary = await services.create_profile(state, form)
    finally:
        await run_in_threadpool(services.remove_tree, scratch)
    return ProfilePublic.model_validate(summary)


@router.get("", response_model=ProfileList)
def list_profiles(state: State) -> ProfileList:
    """All profiles, oldest first."""
    return ProfileList.model_validate({"profiles": state.profiles.list()})


@router.get("/{profile_id}", response_model=ProfilePublic)
def get_profile(profile_id: ProfileId, state: State) -> ProfilePublic:
    """One profile: range, quality report, samples."""
    return ProfilePublic.model_validate(state.profiles.summary(profile_id))


@router.delete("/{profile_id}", status_code=204, response_class=Response)
def delete_profile(profile_id: ProfileId, state: State) -> Response:
    """Delete a profile and its stored data."""
    state.profiles.delete(profile_id)
    return Response(status_code=204)


@router.post(
    "/{profile_id}/models",
    status_code=201,
    response_model=TrainedModelPublic,
    dependencies=[Depends(job_limit)],
    openapi_extra=_MODEL_BODY,
    responses=error_responses(409, 413, 415),
)
async def add_model(profile_id: ProfileId, request: Request, state: State) -> TrainedModelPublic:
    """Add a trained model to a profile (multipart: `model`, with `index`, `config`, `cluster` as it
    needs). The files are checked (loaded without running any code they hold, shapes against the
    config) before anything is stored; a refused model leaves nothing behind."""
    await run_in_threadpool(state.profiles.summary, profile_id)  # 404 before the upload is read
    scratch = await run_in_threadpool(state.blobs.scratch_dir)
    try:
        form = await receive_multipart(
            request,
            scratch,
            file_fields=set(services.MODEL_FILE_FIELDS),
            max_file_bytes=state.settings.max_upload_bytes,
            max_files=state.settings.max_upload_files,
            files_setting="AUTOVOICE_MAX_UPLOAD_FILES",
        )
        model = await services.add_model(state, profile_id, form)
    finally:
        await run_in_threadpool(services.remove_tree, scratch)
    return TrainedModelPublic.model_validate(model)


@router.get("/{profile_id}/models", response_model=TrainedModelList)
def list_models(profile_id: ProfileId, state: State) -> TrainedModelList:
    """A profile's trained models."""
    return TrainedModelList.model_validate({"models": state.profiles.models(profile_id)})


@router.delete("/{profile_id}/models/{model_id}", status_code=204, response_class=Response)
def delete_model(profile_id: ProfileId, model_id: ModelId, state: State) -> Response:
    """Remove a trained model and its files from a profile."""
    state.profiles.remove_model(profile_id, model_id)
    return Response(status_code=204)
