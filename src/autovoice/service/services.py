"""Service functions behind the routes: validate, call the library, shape the result.

Routes stay thin (parse the request, call one of these, return the typed response). The synchronous
functions run in the thread pool; the CPU-heavy part of a profile build or a model upload runs in a worker
process (``*_here``, through ``ServiceState.workers``), awaited by the ``async`` functions.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from autovoice.config import Settings
from autovoice.errors import (
    AudioError,
    AutoVoiceError,
    ConflictError,
    ModelNotInstalledError,
    ModelUnavailableError,
    NotFoundError,
    ParameterError,
    UnsupportedFormatError,
)
from autovoice.jobs import QueueUnavailableError
from autovoice.service.errors import public_error
from autovoice.service.schemas import ConversionParams, JobPublic, TtsRequest
from autovoice.service.state import ServiceState
from autovoice.service.uploads import MultipartForm, UploadedFile
from autovoice.storage import blobs

if TYPE_CHECKING:
    from autovoice.pipeline import ConversionOptions
    from autovoice.profiles.trained import StagedModel

log = logging.getLogger("autovoice.service")
API = "/api/v1"
_STEM_FILES = {"mix": blobs.MIX, "vocals": blobs.VOCALS, "accompaniment": blobs.ACCOMPANIMENT}


def _check_audio_file(state: ServiceState, f: UploadedFile, *, decode: bool = False) -> None:
    """Checks of an upload: the header (format, duration, rate, channels), then with ``decode`` the
    samples themselves (silence, NaN), so that a job is only queued for audio it can convert."""
    from autovoice.audio import check_limits, load, probe

    try:
        info = probe(f.path, settings=state.settings)
    except AutoVoiceError as exc:
        raise _in_client_terms(exc, f) from None
    if not info.duration_s > 0:
        # probe refuses streams without channels or rate; a header that announces no samples (a WAV
        # with 0 frames) or no length still gets here.
        raise UnsupportedFormatError(
            "unsupported_format",
            f"Could not read '{f.filename}' as audio: no audio stream found. Upload wav, flac, ogg, mp3, "
            "m4a or opus.",
            {"filename": f.filename},
        )
    check_limits(
        duration_s=info.duration_s, sr=info.sample_rate, channels=info.channels, settings=state.settings
    )
    if info.duration_s < state.settings.min_audio_seconds:
        raise AudioError(
            "audio_too_short",
            f"'{f.filename}' lasts {info.duration_s:.2f} s; at least "
            f"{state.settings.min_audio_seconds:.1f} s is needed.",
            {"duration_s": round(info.duration_s, 3), "min_s": state.settings.min_audio_seconds},
        )
    if decode:
        try:
            load(f.path, settings=state.settings)  # validates: audio_silent, audio_invalid_samples...
        except AutoVoiceError as exc:
            raise _in_client_terms(exc, f) from None


def _in_client_terms(exc: AutoVoiceError, f: UploadedFile) -> AutoVoiceError:
    """The same error, naming the client's file instead of the server's path (which never leaks)."""
    message = exc.message.replace(str(f.path), f.filename).replace(f.path.name, f.filename)
    details = {k: v for k, v in exc.details.items() if k != "path"} | {"filename": f.filename}
    return type(exc)(exc.code, message, details)


# -- profiles ------------------------------------------------------------------------------------
def _sample_name(filename: str, taken: set[str], ext: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem).strip("._")[:60] or "sample"
    name, n = f"{stem}{ext}", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}{ext}"
    taken.add(name)
    return name


#: File fields of a trained-model upload (the checkpoint and its optional companions).
MODEL_FILE_FIELDS = ("model", "index", "config", "cluster")
#: A trained model's uploaded parts: role (``model``, ``index``...) -> (file on disk, client's name).
ModelParts = dict[str, tuple[Path, str]]


@dataclass(frozen=True)
class ProfileRequest:
    """A checked profile upload, as a worker process builds it: plain values that pickle."""

    name: str
    samples: list[Path]
    model: ModelParts | None


def _model_parts(form: MultipartForm) -> ModelParts:
    """The trained model's parts of an upload (``model`` + optional ``index``/``config``/``cluster``),
    checked for shape only; the files themselves are checked where they are staged."""
    parts: ModelParts = {}
    for role in MODEL_FILE_FIELDS:
        given = form.files_of(role)
        if len(given) > 1:
            raise ParameterError("invalid_parameter", f"Upload at most one '{role}'.", {"field": role})
        if given:
            parts[role] = (given[0].path, given[0].filename)
    if "model" not in parts:
        raise ParameterError(
            "invalid_parameter", "Upload the trained model's .pth file as 'model'.", {"field": "model"}
        )
    return parts


def _stage_model(parts: ModelParts, settings: Settings) -> StagedModel:
    """Check an uploaded trained model and stage it; raises the checkpoint's error (422) and leaves
    nothing behind."""
    from autovoice.pipeline.enroll import stage_model

    def path(role: str) -> Path | None:
        return parts[role][0] if role in parts else None

    return stage_model(
        parts["model"][0],
        index=path("index"),
        config=path("config"),
        cluster=path("cluster"),
        filenames={role: filename for role, (_, filename) in parts.items()},
        settings=settings,
    )


def check_profile_upload(state: ServiceState, form: MultipartForm) -> ProfileRequest:
    """Check a profile upload (fields, name, free name, each recording's header) and give the
    recordings their client names; the analysis is :func:`build_profile_here`'s."""
    from autovoice.profiles import validate_profile_name

    unknown = sorted(set(form.fields) - {"name"})
    if unknown:
        raise ParameterError(
            "invalid_parameter", f"Unexpected form field '{unknown[0][:40]}'.", {"field": unknown[0][:40]}
        )
    if "name" not in form.fields:
        raise ParameterError("invalid_parameter", "The form field 'name' is required.", {"field": "name"})
    name = validate_profile_name(form.fields["name"])
    files = form.files_of("files")
    with_model = any(form.files_of(role) for role in MODEL_FILE_FIELDS)
    if not files and not with_model:
        raise ParameterError(
            "no_samples",
            "Upload one or more recordings of the voice as 'files', a trained model as 'model', or both.",
            {"field": "files"},
        )
    if state.profiles.name_taken(name):
        raise ConflictError(
            "profile_exists",
            f"A profile named '{name}' already exists. Delete it first or choose another name.",
            {"profile": name},
        )
    taken: set[str] = set()
    paths = []
    for f in files:
        _check_audio_file(state, f)
        target = f.path.with_name(_sample_name(f.filename, taken, f.path.suffix))
        os.replace(f.path, target)
        paths.append(target)
    return ProfileRequest(name=name, samples=paths, model=_model_parts(form) if with_model else None)


def build_profile_here(request: ProfileRequest, device: str) -> dict[str, Any]:
    """Build and store the profile (in a worker process: :func:`autovoice.jobs.pool.worker_context`);
    returns its summary."""
    from autovoice.jobs.pool import worker_context
    from autovoice.pipeline.enroll import enroll
    from autovoice.storage import ProfileIndex

    ctx = worker_context()
    profiles = ProfileIndex(ctx.db, ctx.settings)
    parts = request.model
    return enroll(
        request.name,
        request.samples,
        model=(lambda: _stage_model(parts, ctx.settings)) if parts is not None else None,
        save=lambda profile, staged: profiles.save(profile, models=staged),
        settings=ctx.settings,
        device=device,
    )


async def create_profile(state: ServiceState, form: MultipartForm) -> dict[str, Any]:
    """Build and store a profile from uploaded recordings and/or a trained model; returns its summary.

    The upload is checked in the thread pool, then the analysis (seconds of CPU per recording) runs in
    one of the server's worker processes (``Settings.profile_build_workers``): the event loop keeps
    answering meanwhile."""
    request = await run_in_threadpool(check_profile_upload, state, form)
    return await state.workers.run(build_profile_here, request, state.device)


def add_model_here(profile_id: str, parts: ModelParts) -> dict[str, Any]:
    """Check and stage an uploaded trained model and store it with profile ``profile_id`` (in a worker
    process); returns the model."""
    from autovoice.jobs.pool import worker_context
    from autovoice.storage import ProfileIndex

    ctx = worker_context()
    with _stage_model(parts, ctx.settings) as staged:
        return ProfileIndex(ctx.db, ctx.settings).add_model(profile_id, staged)


async def add_model(state: ServiceState, profile_id: str, form: MultipartForm) -> dict[str, Any]:
    """Check an uploaded trained model (loading a checkpoint is CPU work: in a worker process) and store
    it with profile ``profile_id``; returns the model."""
    if form.fields:
        unknown = sorted(form.fields)[0][:40]
        raise ParameterError("invalid_parameter", f"Unexpected form field '{unknown}'.", {"field": unknown})
    await run_in_threadpool(state.profiles.summary, profile_id)  # profile_not_found before the checkpoint
    return await state.workers.run(add_model_here, profile_id, _model_parts(form))


# -- conversions ---------------------------------------------------------------------------------
def job_public(snapshot: dict[str, Any]) -> JobPublic:
    """A job snapshot as the API shows it (result paths become download URLs)."""
    doc = dict(snapshot)
    if doc.get("result"):
        base = f"{API}/conversions/{doc['id']}/audio?stem="
        doc["result"] = {name: base + name for name in doc["result"] if name in _STEM_FILES}
    params = dict(doc.get("params") or {})
    doc["params"] = {k: params[k] for k in ConversionParams.model_fields if k in params}
    if doc.get("error"):
        doc["error"] = public_error(doc["error"])
    return JobPublic.model_validate(doc)


def check_weights(options: ConversionOptions, *, settings: Settings) -> None:
    """The weights a conversion's separation and F0 method load, looked for before the 202 (its job would
    fail with ``model_unavailable`` once it ran): ``separation=demucs`` needs the ``demucs`` package and
    the htdemucs weights, the ``rmvpe`` F0 method the user's ``rmvpe.pt``; not when downloads are allowed
    (the job fetches them). Cheap: files are looked for, not loaded.

    Raises
    ------
    ModelNotInstalledError
        ``model_unavailable`` (409), with ``details.field`` naming the option (never a server path).
    """
    import importlib.util

    from autovoice.models.local import local_source, not_installed
    from autovoice.models.weights import weights_present

    if options.separation == "demucs" and (
        importlib.util.find_spec("demucs") is None
        or not (settings.allow_downloads or weights_present("htdemucs", settings=settings))
    ):
        raise ModelNotInstalledError(
            "model_unavailable",
            "Separation 'demucs' needs the demucs package and its htdemucs weights (84 MB), which this "
            "server does not have, and downloads are off. Use separation 'auto' or 'spleeter', or have the "
            "operator install them (`autovoice models download htdemucs`).",
            {"name": "htdemucs", "field": "separation"},
        )
    if options.resolved_f0_method() == "rmvpe" and not (
        settings.allow_downloads
        or local_source("rmvpe", settings=settings) is not None
        or weights_present("rmvpe", settings=settings)
    ):
        missing = not_installed("rmvpe", needed_by="The rmvpe F0 method")
        raise ModelNotInstalledError(missing.code, missing.message, {**missing.details, "field": "f0_method"})


def submit_conversion(state: ServiceState, job_id: str, form: MultipartForm) -> JobPublic:
    """Validate an uploaded conversion request (options, profile, audio), store the job row
    (``queued``) and enqueue it. Every refusal happens here, before the 202."""
    from autovoice.pipeline import ConversionOptions
    from autovoice.pipeline.options import options_for_profile

    fields = dict(form.fields)
    unknown = sorted(set(fields) - set(ConversionOptions.model_fields) - {"profile_id"})
    if unknown:
        raise ParameterError(
            "invalid_parameter", f"Unexpected form field '{unknown[0][:40]}'.", {"field": unknown[0][:40]}
        )
    if str(fields.get("engine_options", "")).strip() not in ("", "{}") and not fields.get("engine"):
        # One engine's options: the request says which (the schema is a union keyed by engine).
        raise ParameterError(
            "invalid_parameter",
            "engine_options needs engine: each engine has options of its own (see GET /api/v1/engines).",
            {"field": "engine"},
        )
    profile_id = fields.pop("profile_id", "")
    if not profile_id or len(profile_id) > 80:
        raise ParameterError(
            "invalid_parameter",
            "The form field 'profile_id' (1-80 characters) is required.",
            {"field": "profile_id"},
        )
    # The profile first: the engine defaults to its trained model's kind, and what the options need from
    # it (recordings for auto key, a model for rvc/sovits, the model's content encoder) is checked here.
    try:
        options = options_for_profile(state.profiles.load(profile_id), fields)
    except ParameterError as exc:
        if exc.code != "model_not_found":
            raise
        # A model the profile does not have is a reference to nothing, like an unknown profile: 404, as
        # for DELETE .../models/{model_id} (the library says ParameterError: the CLI's exit 2 either way).
        raise NotFoundError(exc.code, exc.message, exc.details) from None
    except ModelUnavailableError as exc:
        if exc.code != "model_unavailable" or isinstance(exc, ModelNotInstalledError):
            raise
        # The trained model's content encoder is not installed: found before any work, like the weights
        # below (409), not a fault of the server.
        raise ModelNotInstalledError(exc.code, exc.message, exc.details) from None
    check_weights(options, settings=state.settings)
    inputs, accs = form.files_of("file"), form.files_of("accompaniment")
    if len(inputs) != 1:
        raise ParameterError(
            "invalid_parameter", "Upload exactly one audio file as 'file'.", {"field": "file"}
        )
    if len(accs) > 1:
        raise ParameterError(
            "invalid_parameter", "Upload at most one 'accompaniment'.", {"field": "accompaniment"}
        )
    folder = state.blobs.job_dir(job_id)
    src = inputs[0]
    _check_audio_file(state, src, decode=True)
    input_name = f"input{src.path.suffix}"
    os.replace(src.path, folder / input_name)
    acc_name = None
    if accs:
        _check_audio_file(state, accs[0], decode=True)
        acc_name = f"accompaniment{accs[0].path.suffix}"
        os.replace(accs[0].path, folder / acc_name)
    params = {
        **options.to_params(),
        "profile_id": profile_id,
        "input": input_name,
        "accompaniment": acc_name,
        "filename": src.filename,
    }
    snapshot = state.jobs.create(job_id, kind="conversion", params=params)
    try:
        state.queue.submit(job_id)
    except QueueUnavailableError as exc:
        state.jobs.fail(job_id, exc.to_dict())
        raise
    log.info("job %s queued (%s, preset %s)", job_id, src.filename, options.preset)
    return job_public(snapshot)


def audio_path(state: ServiceState, job_id: str, stem: str) -> Path:
    """The file of one output of a completed job."""
    job = state.jobs.get(job_id)
    if job["status"] != "completed":
        raise ConflictError(
            "job_not_finished",
            f"Job {job_id} is {job['status']}; its audio exists once it is completed.",
            {"status": job["status"]},
        )
    rel = (job.get("result") or {}).get(stem)
    path: Path | None = state.blobs.job_dir(job_id) / str(rel) if rel else None
    if path is None or not path.is_file():
        raise NotFoundError(
            "stem_not_available",
            f"Job {job_id} has no '{stem}' output"
            + (
                " (no accompaniment: the conversion ran without separation)."
                if stem == "accompaniment"
                else "."
            ),
            {"stem": stem},
        )
    return path


# -- text to speech ------------------------------------------------------------------------------
def voices(state: ServiceState) -> list[dict[str, Any]]:
    from autovoice import tts

    return tts.list_voices(state.settings)


def _voice_name(state: ServiceState, requested: str | None) -> str | None:
    """The requested voice if ``list_voices`` knows it (by name or id); client paths never get through."""
    if requested is None:
        return None
    known = voices(state)
    for v in known:
        if requested in (v.get("name"), v.get("id")):
            return str(v["name"])
    raise NotFoundError(
        "voice_not_found",
        f"Unknown voice '{requested[:100]}'. Available: {', '.join(str(v['name']) for v in known)}.",
        {"voice": requested[:100], "available": [v["name"] for v in known]},
    )


def wav_bytes(y: np.ndarray, *, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def synthesize(state: ServiceState, req: TtsRequest) -> bytes:
    """The whole utterance as a 16-bit WAV file."""
    from autovoice import tts

    voice = _voice_name(state, req.voice)
    profile = state.profiles.load(req.profile_id) if req.profile_id else None
    y, sr = tts.synthesize(req.text, voice=voice, profile=profile, speed=req.speed, settings=state.settings)
    return wav_bytes(y, sr=sr)


def _streaming_wav_header(sr: int) -> bytes:
    """A WAV header for 16-bit mono of unknown length (sizes set to the maximum, as streamers do)."""
    import struct

    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )


def synthesize_stream(state: ServiceState, req: TtsRequest) -> Iterator[bytes]:
    """A WAV header then 16-bit PCM sentence by sentence. Validates (and loads the voice) before returning."""
    from autovoice import tts

    voice_name = _voice_name(state, req.voice)
    profile = state.profiles.load(req.profile_id) if req.profile_id else None
    voice = tts.load_voice(voice_name, settings=state.settings)
    chunks = tts.stream(req.text, voice=voice, profile=profile, speed=req.speed, settings=state.settings)

    def generate() -> Iterator[bytes]:
        yield _streaming_wav_header(voice.sample_rate)
        try:
            for chunk in chunks:
                yield (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        except Exception:  # headers are sent: all we can do is stop the stream early
            log.exception("TTS stream failed midway")

    return generate()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
