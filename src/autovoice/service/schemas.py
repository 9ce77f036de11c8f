"""Typed request and response bodies of the HTTP API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autovoice.pipeline.options import ConversionOptions

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
Stem = Literal["mix", "vocals", "accompaniment"]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `profile_not_found`.")
    message: str = Field(description="What was wrong and how to fix it.")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the ``{"error": ...}`` body for each status."""
    return {status: {"model": ErrorResponse} for status in statuses}


class QueueInfo(BaseModel):
    mode: Literal["local", "celery"]
    depth: int = Field(description="Jobs waiting to start.")
    running: int = Field(description="Jobs running now (all workers).")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    device: str
    models: list[str] = Field(
        description="Models loaded in this process, as `name@device` (a model file by its name, not its "
        "path)."
    )
    queue: QueueInfo
    database: bool = Field(description="The database answers.")
    storage: bool = Field(
        default=True,
        description="The data dir takes a write and has at least `AUTOVOICE_MIN_FREE_BYTES` free.",
    )


class LiveResponse(BaseModel):
    status: Literal["ok"]


class StoredFilePublic(BaseModel):
    name: str = Field(description="The file's name in the model's folder.")
    original: str = Field(description="The name it was uploaded or imported under.")
    sha256: str
    size: int


class TrainedModelPublic(BaseModel):
    """A trained model stored with a profile (RVC / Applio, so-vits-svc)."""

    id: str = Field(description="`mdl_...`")
    name: str = Field(description="The checkpoint's file name without its suffix.")
    kind: Literal["rvc", "sovits"] = Field(description="Also the engine that renders it.")
    variant: str = Field(description="rvc-v1, rvc-v2, applio-v1, applio-v2, sovits-4.0 or sovits-4.1.")
    sample_rate: int
    f0: bool = Field(description="The model takes a pitch curve.")
    speakers: int
    embedder: str = Field(description="The content encoder it needs (weights registry name).")
    content_dim: int
    index_dim: int | None = Field(default=None, description="Dimension of the retrieval index, if any.")
    sha256: str = Field(description="SHA-256 of the checkpoint.")
    size_bytes: int = Field(description="All of the model's files together.")
    created_at: str
    files: dict[str, StoredFilePublic] = Field(description="By role: model, index, config, cluster.")
    info: dict[str, Any] = Field(description="Everything the inspection found.")


class TrainedModelList(BaseModel):
    models: list[TrainedModelPublic]


class ProfilePublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    revision: int
    created_at: str
    format_version: int
    vocal_range: dict[str, Any] | None = Field(description="None for a profile without recordings.")
    quality: dict[str, Any] | None = Field(description="None for a profile without recordings.")
    samples: list[str]
    embedding_dim: int
    engines: list[str]
    models: list[TrainedModelPublic] = Field(default_factory=list, description="Trained models.")


class ProfileList(BaseModel):
    profiles: list[ProfilePublic]


class ConversionParams(ConversionOptions):
    """A job's parameters as the API shows them: its :class:`ConversionOptions` and what it converts."""

    profile_id: str = Field(description="The target voice profile.")
    filename: str | None = Field(default=None, description="The uploaded file's name, for display.")


def conversion_form_schema() -> dict[str, Any]:
    """The ``multipart/form-data`` body of ``POST /api/v1/conversions``, derived from
    :class:`ConversionOptions` (plus the files and the profile) so the two cannot disagree."""
    from autovoice.engines import ENGINES

    options = ConversionOptions.model_json_schema()
    props: dict[str, Any] = {
        "file": {
            "type": "string",
            "format": "binary",
            "minLength": 1,
            "description": "The song or vocal.",
        },
        "profile_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 80,
            "description": "Target profile id.",
        },
        "accompaniment": {
            "type": "string",
            "format": "binary",
            "minLength": 1,
            "description": "An accompaniment to mix back.",
        },
    }
    for name, prop in options["properties"].items():
        prop = dict(prop)
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:  # optional fields are left out of a form rather than sent as null
            prop.update(branches[0])
        prop.pop("title", None)
        props[name] = prop
    # In a form, auto key is asked for by sending it; leaving it out means a manual (or no) shift.
    props["auto_key"] = {"type": "boolean", "const": True, "description": props["auto_key"]["description"]}
    # engine_options is one engine's options: which one, the request's `engine` says (a union keyed by
    # engine), so engine_options comes with engine. Left out, the engine is the profile's (its trained
    # model's kind), which no schema can know.
    props["engine_options"] = {
        "type": "object",
        "description": options["properties"]["engine_options"].get("description", "")
        + " Needs `engine`: its schema is that engine's.",
    }
    by_engine: list[dict[str, Any]] = []
    for choice in ENGINES.describe():
        branch: dict[str, Any] = {"properties": {"engine": {"const": choice["name"]}}, "required": ["engine"]}
        if choice["options"]:
            schema = dict(choice["options"])
            schema.pop("title", None)
            branch["properties"]["engine_options"] = schema
        by_engine.append(branch)
    by_engine.append({"not": {"required": ["engine"]}})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "profile_id"],
                        "properties": props,
                        "additionalProperties": False,
                        # pitch_shift and auto_key exclude each other (auto key computes the shift).
                        "not": {"required": ["pitch_shift", "auto_key"]},
                        "dependentRequired": {"engine_options": ["engine"]},
                        "oneOf": by_engine,
                    },
                    "encoding": {"engine_options": {"contentType": "application/json"}},
                }
            },
        }
    }


class JobPublic(BaseModel):
    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    stage: str
    params: ConversionParams
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, str] | None = Field(
        default=None, description="Download URL of each output (`mix`, `vocals`, `accompaniment`, `report`)."
    )
    metrics: dict[str, Any] | None = Field(
        default=None, description="RTF, stage timings, pitch plan, quality report."
    )
    error: ErrorBody | None = None
    attempts: int = Field(
        description="Times the job was started (its worker died mid-run on all but the last)."
    )
    deliveries: int = Field(
        default=0,
        description="Times the job was handed to a worker process (a worker that dies before it starts the "
        "job counts a delivery, not an attempt; past AUTOVOICE_JOB_MAX_DELIVERIES: `worker_lost`).",
    )
    requeued: Literal["worker_lost", "restart", "shutdown"] | None = Field(
        default=None,
        description="Why the job was last put back in the queue (its worker stopped beating, the server "
        "restarted, a worker shut down); null if never.",
    )
    device: str | None = None
    cancel_requested: bool = False


#: A visible character: not whitespace, not an invisible format character (what text preparation drops).
_VISIBLE = (
    "[^\\s\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=5000,
        # At least one visible character (whitespace and invisible format characters do not count).
        pattern=_VISIBLE,
        description="What to say. A text with no speakable word (only punctuation) is refused: `empty_text`.",
    )
    voice: str | None = Field(
        default=None, max_length=100, description="A name from `GET /api/v1/voices`; default `joe`."
    )
    profile_id: str | None = Field(
        default=None, max_length=80, description="Speak in this profile's voice (converted)."
    )
    format: Literal["wav"] = "wav"
    speed: float = Field(default=1.0, ge=0.5, le=2.0)
    stream: bool = Field(default=False, description="Send WAV chunks sentence by sentence (chunked).")


class VoicePublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    id: str | None = None
    builtin: bool = False
    language: str | None = None
    sample_rate: int | None = None


class VoiceList(BaseModel):
    voices: list[VoicePublic]
