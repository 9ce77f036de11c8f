"""Shared fixtures: an isolated data dir per test and the shared recordings (skipped when absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autovoice.config import Settings, get_settings
from tests.support import SPEECH


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Every test gets its own data dir; nothing touches the user's real profiles."""
    monkeypatch.setenv("AUTOVOICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTOVOICE_DEVICE", "cpu")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def speech_dir() -> Path:
    """``../shared/data/speech/librispeech``; skips the test when the shared data is absent."""
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    return SPEECH
