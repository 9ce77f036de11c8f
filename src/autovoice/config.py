"""Settings read from ``AUTOVOICE_*`` environment variables (or a ``.env`` file).

One object holds everything configurable; no other module reads ``os.environ``. Defaults suit the
embedded mode on one machine: SQLite and files under the data dir, in-process workers, no downloads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("autovoice", appauthor=False))


class Settings(BaseSettings):
    """AutoVoice configuration. Every field can be set as ``AUTOVOICE_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix="AUTOVOICE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default_factory=_default_data_dir, description="Profiles, jobs, outputs.")
    cache_dir: Path | None = Field(
        default=None, description="Downloaded model weights; default: <data_dir>/models."
    )
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda:N'.")
    allow_downloads: bool = Field(
        default=False, description="Let AutoVoice fetch model weights that are not bundled."
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto", description="Log lines on stderr: 'text', 'json', or 'auto' (text on a terminal)."
    )

    # Input limits.
    max_audio_seconds: float = Field(default=15 * 60, gt=0, description="Longest accepted input.")
    min_audio_seconds: float = Field(default=1.0, gt=0, description="Shortest accepted input.")
    max_file_bytes: int = Field(default=500 * 1024 * 1024, gt=0, description="Largest input file.")
    max_channels: int = Field(default=2, ge=1)
    min_sample_rate: int = Field(default=8_000, gt=0)
    max_sample_rate: int = Field(default=192_000, gt=0)

    # Voice profiles.
    profile_min_voiced_seconds: float = Field(default=3.0, gt=0)
    profile_recommended_voiced_seconds: float = Field(default=30.0, gt=0)

    # Text to speech.
    tts_max_chars: int = Field(default=5000, gt=0, description="Longest accepted text.")
    tts_threads: int = Field(
        default=1,
        ge=0,
        description="Threads of one Piper voice's ONNX session (intra-op), without busy-waiting; "
        "0: ONNX Runtime's default (every core, spinning).",
    )

    # Service: storage, jobs, auth, limits (see docs/service.md).
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite (WAL) at <data_dir>/autovoice.db."
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://...); set = distributed mode with workers."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for progress pub/sub and rate limits; default: broker_url."
    )
    rate_limit: str = Field(default="100/minute", description="Per key/client; '' disables.")
    job_rate_limit: str = Field(default="10/minute", description="Job-creating requests; '' disables.")
    address_rate_limit: str = Field(
        default="", description="Per client address over all its keys, on top of rate_limit; '' disables."
    )
    min_free_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=0,
        description="/health/ready fails while the data dir's filesystem has less free; 0: no threshold.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="`autovoice serve` closes a connection whose request line and headers take longer.",
    )
    health_cache_s: float = Field(
        default=1.0, ge=0, description="Longest age of the /health document (database ping, job counts)."
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Workers: job process i serves Prometheus /metrics on this port + i; unset: none.",
    )
    worker_metrics_host: str = Field(default="127.0.0.1", description="Address the worker metrics bind.")
    server_workers: int = Field(
        default=1, ge=1, description="Server processes sharing the port; more than 1 needs distributed mode."
    )
    require_api_key: bool | None = Field(
        default=None, description="None: required only when binding a non-loopback address."
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty: off.")
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0, description="Largest uploaded file.")
    max_upload_files: int = Field(default=20, ge=1, description="Most files in one request.")
    job_workers: int = Field(
        default=1, ge=1, description="Concurrent jobs in the embedded server (one worker process each)."
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness the embedded server's worker processes (jobs, profile builds) add to their "
        "own: the server's requests get the CPU first when both want it. 0: same priority.",
    )
    profile_build_workers: int = Field(
        default=1,
        ge=1,
        description="Worker processes of a server for profile builds and trained-model checks (started "
        "on first use); more builds than this wait their turn.",
    )
    job_time_limit_s: float = Field(default=3600.0, gt=0, description="Hard limit per job attempt.")
    job_max_attempts: int = Field(default=3, ge=1, description="Attempts before a job is failed.")
    job_heartbeat_s: float = Field(
        default=10.0, gt=0, description="How often the process running a job writes its heartbeat, seconds."
    )
    job_stale_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose heartbeat is older than this lost its worker and is re-queued "
        "(at least 3 heartbeats).",
    )
    live_sessions_per_key: int = Field(
        default=1, ge=1, description="Live conversions (WS /api/v1/live) open at once per key/client."
    )
    live_max_sessions: int = Field(default=2, ge=1, description="Live conversions open at once in a server.")
    model_cache_max_bytes: int = Field(
        default=4 << 30,
        ge=0,
        description="Memory budget of loaded models (bytes of their tensors and arrays); the least recently "
        "used are dropped beyond it. 0: no limit.",
    )
    job_max_deliveries: int = Field(
        default=10,
        ge=1,
        description="Times a job is handed to a worker process before it is failed with worker_lost (a "
        "worker that dies before it starts the job counts no attempt, only a delivery); never fewer "
        "than job_max_attempts + 1.",
    )

    @property
    def model_cache_dir(self) -> Path:
        """Directory for downloaded weights."""
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "models"

    @property
    def profiles_dir(self) -> Path:
        """Directory holding one sub-directory per voice profile."""
        return self.data_dir / "profiles"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
