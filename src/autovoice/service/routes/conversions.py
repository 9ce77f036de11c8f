"""``/api/v1/conversions``: submit a song, follow it (JSON or WebSocket), download, cancel, delete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from autovoice.errors import AutoVoiceError
from autovoice.jobs import event_for, new_job_id
from autovoice.service import services
from autovoice.service.auth import token_from_headers
from autovoice.service.errors import public_error
from autovoice.service.schemas import ErrorResponse, JobPublic, Stem, conversion_form_schema, error_responses
from autovoice.service.state import AdmittedRoute, ServiceState, State, guard, job_limit
from autovoice.service.uploads import receive_multipart

log = logging.getLogger("autovoice.service")
router = APIRouter(
    route_class=AdmittedRoute,
    prefix="/api/v1/conversions",
    tags=["conversions"],
    responses=error_responses(401, 404, 422, 429),
)
JobId = Annotated[str, Path(max_length=80, description="A job id, `job_...`.")]
#: Without an event for this long, the WebSocket re-reads the row (events are a fast path only).
POLL_S = 2.0


def _job_json(job: JobPublic, status: int) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(job), status_code=status, headers={"Location": f"/api/v1/conversions/{job.id}"}
    )


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    dependencies=[Depends(guard), Depends(job_limit)],
    openapi_extra=conversion_form_schema(),
    responses=error_responses(409, 413, 415, 503),
)
async def create_conversion(request: Request, state: State) -> JSONResponse:
    """Upload a song (multipart) and queue its conversion; 202 with the job."""
    job_id = new_job_id()
    folder = state.blobs.job_dir(job_id)
    await run_in_threadpool(folder.mkdir, parents=True)
    try:
        form = await receive_multipart(
            request,
            folder,
            file_fields={"file", "accompaniment"},
            max_file_bytes=state.settings.max_upload_bytes,
            max_files=2,
        )
        job = await run_in_threadpool(services.submit_conversion, state, job_id, form)
    except BaseException:
        # Nothing of a refused request stays on disk (a queued row keeps its folder).
        with contextlib.suppress(Exception):
            if not await run_in_threadpool(_row_exists, state, job_id):
                await run_in_threadpool(services.remove_tree, folder)
        raise
    return _job_json(job, 202)


def _row_exists(state: ServiceState, job_id: str) -> bool:
    try:
        state.jobs.get(job_id)
        return True
    except AutoVoiceError:
        return False


@router.get("/{job_id}", response_model=JobPublic, dependencies=[Depends(guard)])
def get_conversion(job_id: JobId, state: State) -> JobPublic:
    """Status, progress, stage, result URLs, metrics and error of a job."""
    return services.job_public(state.jobs.get(job_id))


@router.get(
    "/{job_id}/audio",
    response_class=FileResponse,
    dependencies=[Depends(guard)],
    responses={200: {"content": {"audio/wav": {}}}, 409: {"model": ErrorResponse}},
)
def get_audio(
    job_id: JobId,
    state: State,
    stem: Annotated[Stem, Query(description="Which output.")] = "mix",
) -> FileResponse:
    """The result audio (WAV) of a completed job: the mix, the converted vocals or the accompaniment."""
    path = services.audio_path(state, job_id, stem)
    return FileResponse(path, media_type="audio/wav", filename=f"{job_id}.{stem}.wav")


@router.delete(
    "/{job_id}",
    status_code=202,
    response_model=JobPublic,
    dependencies=[Depends(guard)],
    responses={204: {"description": "The finished job and its files were deleted."}},
)
def delete_conversion(job_id: JobId, state: State) -> Any:
    """Cancel a queued or running job (202 with the job), or delete a finished one and its files (204)."""
    snapshot = state.jobs.cancel_or_delete(job_id)
    if snapshot is None:
        return Response(status_code=204)
    return _job_json(services.job_public(snapshot), 202)


def _final_event(snapshot: dict[str, Any]) -> dict[str, Any]:
    event = event_for(snapshot)
    job = jsonable_encoder(services.job_public(snapshot))
    event["result"] = job.get("result")
    event["job"] = job
    if "error" in event:
        event["error"] = job.get("error") or public_error(event["error"])
    return event


@router.websocket("/{job_id}/events")
async def conversion_events(websocket: WebSocket, job_id: str) -> None:
    """JSON events until the job ends: ``progress`` (status, progress, stage), then ``completed`` (with
    result URLs and the job) or ``failed`` (with the error; a cancelled job is ``failed`` with status
    ``cancelled``). The current state is sent first. Authenticate with a header or ``?api_key=``."""
    state: ServiceState = websocket.app.state.service
    await websocket.accept()
    try:
        key_id = await run_in_threadpool(
            state.auth.authenticate, token_from_headers(websocket.headers, websocket.query_params)
        )
        ident = f"key:{key_id}" if key_id else f"ip:{websocket.client.host if websocket.client else '?'}"
        state.limits.check(ident)
        async with state.bus.subscribe(job_id) as sub:
            snapshot = await run_in_threadpool(state.jobs.get, job_id)
            await _follow(websocket, state, sub, snapshot)
    except AutoVoiceError as exc:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "error": public_error(exc.to_dict())})
            await websocket.close(code=1008 if exc.http_status in (401, 429) else 1000)
    except WebSocketDisconnect:
        return


async def _follow(websocket: WebSocket, state: ServiceState, sub: Any, snapshot: dict[str, Any]) -> None:
    """Send the job's state, then its events, each progress at least the one before: events published
    between the subscription and the first read of the row arrive after that read and are older than it,
    so they are skipped rather than sent (a progress bar would jump back)."""
    job_id = snapshot["id"]
    last = (snapshot["status"], snapshot["progress"], snapshot["stage"])
    shown = float(snapshot["progress"])
    if snapshot["status"] in ("completed", "failed", "cancelled"):
        await websocket.send_json(_final_event(snapshot))
        await websocket.close()
        return
    await websocket.send_json(event_for(snapshot))
    while True:
        event = await sub.get(POLL_S)
        if event is None or event.get("type") != "progress":
            # No news for a while, or the end: the row has the truth (and the full result).
            snapshot = await run_in_threadpool(state.jobs.get, job_id)
            current = (snapshot["status"], snapshot["progress"], snapshot["stage"])
            if snapshot["status"] in ("completed", "failed", "cancelled"):
                await websocket.send_json(_final_event(snapshot))
                await websocket.close()
                return
            if current == last or float(snapshot["progress"]) < shown:
                continue
            event, last = event_for(snapshot), current
        else:
            if float(event["progress"]) < shown:
                continue  # older than what was already sent
            last = (event["status"], event["progress"], event["stage"])
        shown = max(shown, float(event["progress"]))
        await websocket.send_json(event)
        await asyncio.sleep(0)
