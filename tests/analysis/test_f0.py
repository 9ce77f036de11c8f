"""Known-answer tests for F0 tracking, plus real speech from the shared recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import cents, estimate_f0
from autovoice.audio import load
from autovoice.errors import ParameterError
from tests.support import FEMALE, MALE, harmonic_tone, speaker_files

SR = 44_100


def test_sine_220_is_220_within_10_cents() -> None:
    t = np.arange(SR * 2) / SR
    y = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    track = estimate_f0(y, sr=SR)
    assert track.voiced.mean() > 0.9
    assert abs(np.median(cents(track.f0[track.voiced], 220.0))) < 10


@pytest.mark.parametrize("method", ["fcpe", "world"])
def test_harmonic_tone_within_10_cents(method: str) -> None:
    track = estimate_f0(harmonic_tone(220.0, sr=SR, seconds=2.0), sr=SR, method=method)  # type: ignore[arg-type]
    assert track.method == method
    assert track.voiced.mean() > 0.9
    assert abs(np.median(cents(track.f0[track.voiced], 220.0))) < 10


@pytest.mark.parametrize("method", ["fcpe", "world"])
def test_chirp_contour_tracks_within_20_cents(method: str) -> None:
    seconds = 3.0
    t = np.arange(int(SR * seconds)) / SR
    f_inst = 150.0 * (600.0 / 150.0) ** (t / seconds)  # exponential chirp, 2 octaves
    y = harmonic_tone(f_inst, sr=SR)
    track = estimate_f0(y, sr=SR, method=method)  # type: ignore[arg-type]
    expected = 150.0 * (600.0 / 150.0) ** (track.times / seconds)
    inner = (track.times > 0.1) & (track.times < seconds - 0.1)
    err = np.abs(cents(track.f0[inner], expected[inner]))
    assert np.isfinite(err).mean() > 0.95, "chirp frames reported unvoiced"
    assert np.nanmedian(err) < 20
    assert np.nanpercentile(err, 90) < 50


def test_frames_cover_the_signal_and_silence_is_unvoiced() -> None:
    y = np.concatenate([harmonic_tone(200.0, sr=SR, seconds=1.0), np.zeros(SR, np.float32)])
    track = estimate_f0(y, sr=SR, hop_s=0.01)
    assert len(track.f0) == 200
    assert track.voiced[10:90].all()
    assert not track.voiced[110:].any()
    assert track.voiced_seconds == pytest.approx(1.0, abs=0.1)


def test_long_input_is_windowed_without_seams() -> None:
    # 70 s crosses two FCPE window boundaries (30 s windows).
    y = harmonic_tone(180.0, sr=16_000, seconds=70.0)
    track = estimate_f0(y, sr=16_000)
    assert len(track.f0) == 7000
    assert track.voiced[5:-5].all()
    assert np.abs(cents(track.f0[5:-5], 180.0)).max() < 20


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"method": "crepe"}, "invalid_f0_method"),
        ({"hop_s": 0.5}, "invalid_parameter"),
        ({"fmin": 500.0, "fmax": 100.0}, "invalid_parameter"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(ParameterError) as err:
        estimate_f0(np.zeros(SR, np.float32), sr=SR, **kwargs)  # type: ignore[arg-type]
    assert err.value.code == code


@pytest.mark.shared_data
def test_female_speakers_median_above_male(speech_dir: Path) -> None:
    from autovoice.analysis import vocal_range

    medians = {}
    for speaker in FEMALE + MALE:
        tracks = [estimate_f0(load(f, mono=True)[0], sr=16_000).f0 for f in speaker_files(speaker)[:2]]
        from autovoice.analysis import F0Track

        medians[speaker] = vocal_range(F0Track(np.concatenate(tracks), 0.01, "fcpe")).median_hz
    assert min(medians[s] for s in FEMALE) > max(medians[s] for s in MALE), medians
