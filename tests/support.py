"""Test helpers: paths of the shared recordings and generated signals with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SPEECH = SHARED_DATA / "speech" / "librispeech"
SONG = SHARED_DATA / "song" / "karissa_hobbs-lets_go_fishin.ogg"
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
