"""``POST /api/v1/tts`` (speech as WAV, whole or streamed) and ``GET /api/v1/voices``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from autovoice.service import services
from autovoice.service.schemas import TtsRequest, VoiceList, error_responses
from autovoice.service.state import AdmittedRoute, State, guard, job_limit

router = APIRouter(
    route_class=AdmittedRoute,
    prefix="/api/v1",
    tags=["tts"],
    dependencies=[Depends(guard)],
    responses=error_responses(400, 401, 404, 422, 429, 503),
)


@router.get("/voices", response_model=VoiceList)
def list_voices(state: State) -> VoiceList:
    """Voices usable without a download (the built-in `joe` first)."""
    return VoiceList.model_validate({"voices": services.voices(state)})


@router.post(
    "/tts",
    response_class=Response,
    dependencies=[Depends(job_limit)],
    responses={200: {"content": {"audio/wav": {}}, "description": "16-bit mono WAV."}},
)
async def text_to_speech(req: TtsRequest, state: State) -> Response:
    """Speak a text with a voice from `/api/v1/voices`, optionally in a profile's voice.

    With `stream: true` the WAV arrives sentence by sentence (chunked transfer; the header's sizes are
    left at their maximum, as usual for streamed WAV)."""
    if req.stream:
        chunks = await run_in_threadpool(services.synthesize_stream, state, req)
        return StreamingResponse(chunks, media_type="audio/wav")
    data = await run_in_threadpool(services.synthesize, state, req)
    return Response(data, media_type="audio/wav")
