"""Typed request and response bodies of the HTTP API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
PresetName = Literal["fast", "balanced", "quality"]
SeparationName = Literal["auto", "demucs", "none"]
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
    models: list[str] = Field(description="Models loaded in this process, as `name@device`.")
    queue: QueueInfo
    database: bool = Field(description="The database answers.")


class LiveResponse(BaseModel):
    status: Literal["ok"]


class ProfilePublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    revision: int
    created_at: str
    format_version: int
    vocal_range: dict[str, Any]
    quality: dict[str, Any]
    samples: list[str]
    embedding_dim: int
    engines: list[str]


class ProfileList(BaseModel):
    profiles: list[ProfilePublic]


class ConversionCreate(BaseModel):
    """The form fields of ``POST /api/v1/conversions`` (besides the files)."""

    model_config = ConfigDict(extra="forbid")

    profile_id: str = Field(min_length=1, max_length=80)
    pitch_shift: float | None = Field(default=None, ge=-24, le=24, description="Semitones.")
    auto_key: bool = False
    preset: PresetName = "balanced"
    separation: SeparationName = "auto"


class ConversionParams(BaseModel):
    profile_id: str
    pitch_shift: float | None = None
    auto_key: bool = False
    preset: str = "balanced"
    separation: str = "auto"
    filename: str | None = Field(default=None, description="The uploaded file's name, for display.")


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
    attempts: int
    device: str | None = None
    cancel_requested: bool = False


class TtsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=5000)
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
