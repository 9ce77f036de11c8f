"""``/api/v1/profiles``: upload recordings to build a profile; list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from autovoice.service import services
from autovoice.service.schemas import ProfileList, ProfilePublic, error_responses
from autovoice.service.state import State, guard, job_limit
from autovoice.service.uploads import receive_multipart

router = APIRouter(
    prefix="/api/v1/profiles",
    tags=["profiles"],
    dependencies=[Depends(guard)],
    responses=error_responses(401, 404, 422, 429),
)
ProfileId = Annotated[str, Path(max_length=80, description="A profile id, `prof_...`.")]
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "files"],
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
    """Build a voice profile from uploaded recordings (multipart: `name`, one or more `files`)."""
    scratch = await run_in_threadpool(state.blobs.scratch_dir)
    try:
        form = await receive_multipart(
            request,
            scratch,
            file_fields={"files"},
            max_file_bytes=state.settings.max_upload_bytes,
            max_files=state.settings.max_upload_files,
        )
        summary = await run_in_threadpool(services.create_profile, state, form)
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
