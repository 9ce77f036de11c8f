"""Fixtures for the service tests: one voice profile per session, short clips, a running app."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from autovoice.config import Settings, get_settings
from tests.support import SPEECH, speaker_files


def _need_speech() -> None:
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")


@functools.cache
def _built_profile(data_dir: str) -> Any:
    from autovoice.pipeline.enroll import build_profile

    settings = Settings(data_dir=Path(data_dir), device="cpu")
    return build_profile(speaker_files("367")[:3], name="Test Voice", settings=settings)


@pytest.fixture(scope="session")
def voice_profile(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A profile built once per session from three utterances of speaker 367 (not stored anywhere).

    Cached across the packages that use it (service, storage, jobs), so it is built only once.
    """
    _need_speech()
    return _built_profile(str(tmp_path_factory.getbasetemp() / "profile-build"))


def _clip(tmp_path_factory: pytest.TempPathFactory, seconds: float) -> Path:
    _need_speech()
    from autovoice.audio import load, save

    parts = []
    for f in speaker_files("1688"):
        y, sr = load(f, mono=True)
        parts.append(y)
        if sum(len(p) for p in parts) >= seconds * sr:
            break
    y = np.concatenate(parts)[: int(seconds * sr)]
    return save(tmp_path_factory.mktemp("clips") / f"clip{seconds:g}.wav", y, sr=sr)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of male speech (a conversion takes a few seconds on 2 cores)."""
    return _clip(tmp_path_factory, 3.0)


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of speech: long enough to cancel or kill a job while it runs."""
    return _clip(tmp_path_factory, 12.0)


@pytest.fixture
def profile_id(settings: Settings, voice_profile: Any) -> str:
    """The session profile saved into this test's data dir (the app indexes it at start-up)."""
    from autovoice.profiles import ProfileStore

    p = copy.deepcopy(voice_profile)
    ProfileStore(settings).save(p)
    return str(p.id)


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """``configure(rate_limit="", ...)`` sets ``AUTOVOICE_*`` variables and returns fresh settings."""

    def apply(**values: Any) -> Settings:
        for key, value in values.items():
            monkeypatch.setenv(f"AUTOVOICE_{key.upper()}", str(value))
        get_settings.cache_clear()
        return get_settings()

    return apply


@contextmanager
def running_app() -> Iterator[TestClient]:
    """The real app (SQLite file in the test's data dir, LocalQueue threads) under a TestClient, with
    the current settings (call ``configure(...)`` first to change them)."""
    from autovoice.service import create_app

    with TestClient(create_app(get_settings()), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def client(settings: Settings, profile_id: str) -> Iterator[TestClient]:
    """The app with default settings and the test profile in place."""
    with running_app() as c:
        yield c


def wait_for(
    client: TestClient, job_id: str, *, until: Callable[[dict[str, Any]], bool], timeout: float = 90.0
) -> dict[str, Any]:
    """Poll ``GET /api/v1/conversions/{id}`` until ``until(job)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/conversions/{job_id}").json()
        if "error" in job and "status" not in job:
            raise AssertionError(f"polling job {job_id} failed: {job}")
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached the expected state: {job}")
        time.sleep(0.25)


def events_until_end(client: TestClient, job_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    """All WebSocket events of a job up to and including ``completed`` or ``failed``."""
    events = []
    with client.websocket_connect(f"/api/v1/conversions/{job_id}/events", **kwargs) as ws:
        while True:
            event = ws.receive_json()
            events.append(event)
            if event["type"] in ("completed", "failed", "error"):
                return events


def submit(client: TestClient, clip: Path, profile: str, **fields: Any) -> dict[str, Any]:
    data = {"profile_id": profile, "preset": "fast", "separation": "none", **fields}
    with clip.open("rb") as fh:
        r = client.post("/api/v1/conversions", data=data, files={"file": (clip.name, fh, "audio/wav")})
    assert r.status_code == 202, r.text
    doc: dict[str, Any] = r.json()
    return doc
