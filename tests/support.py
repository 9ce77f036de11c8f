"""Test helpers: paths of the shared recordings and generated signals with known answers.

The recordings (LibriSpeech utterances and one CC BY song) live outside the repository: in
``$AUTOVOICE_TEST_DATA`` when it is set, else in ``../shared/data`` beside the clone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: The environment variable that says where the shared recordings are.
TEST_DATA_ENV = "AUTOVOICE_TEST_DATA"
SHARED_DATA = Path(os.environ.get(TEST_DATA_ENV) or REPO.parent / "shared" / "data").expanduser().absolute()
SPEECH = SHARED_DATA / "speech" / "librispeech"
SONG = SHARED_DATA / "song" / "karissa_hobbs-lets_go_fishin.ogg"


def missing_recordings() -> list[Path]:
    """The parts of the shared recordings that are not there (empty when they all are)."""
    return [p for p in (SPEECH, SONG) if not p.exists()]


FEMALE = ("367", "533", "1998", "3080", "3331")
MALE = ("1688", "2033", "2414", "2609", "3005")


def speaker_files(speaker: str) -> list[Path]:
    """The sorted utterance files of one LibriSpeech speaker."""
    return sorted((SPEECH / speaker).glob("*.flac"))


def harmonic_tone(
    f0: np.ndarray | float, *, sr: int, seconds: float | None = None, n_harmonics: int = 12
) -> np.ndarray:
    """A voice-like harmonic tone (1/k amplitudes) following ``f0`` (Hz per sample, or constant)."""
    if np.isscalar(f0):
        assert seconds is not None
        f = np.full(int(sr * seconds), float(f0))  # type: ignore[arg-type]
    else:
        f = np.asarray(f0, dtype=np.float64)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f.max() < sr / 2)
    return (0.3 * np.asarray(y) / np.max(np.abs(y))).astype(np.float32)
