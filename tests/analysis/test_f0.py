"""Known-answer tests for F0 tracking, plus real speech from the shared recordings."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from autovoice.analysis import F0_METHOD_NAMES, F0_METHODS, F0Method, cents, estimate_f0
from autovoice.audio import load
from autovoice.errors import ParameterError
from tests.support import FEMALE, MALE, harmonic_tone, speaker_files

SR = 44_100
CREPES = ["crepe-tiny", pytest.param("crepe", marks=pytest.mark.slow)]


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


@pytest.mark.parametrize("method", ["fcpe", "world", *CREPES])
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
        ({"method": "yin"}, "invalid_f0_method"),
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


@pytest.mark.parametrize("method", F0_METHOD_NAMES)
def test_empty_input_gives_an_empty_track(method: str) -> None:
    track = estimate_f0(np.zeros(0, np.float32), sr=SR, method=method)  # type: ignore[arg-type]
    assert track.f0.shape == (0,)
    assert track.method == method


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(ParameterError) as err:
        estimate_f0(np.zeros(SR, np.float32), sr=SR, method="pyin")  # type: ignore[arg-type]
    assert err.value.code == "invalid_f0_method"
    assert err.value.details["valid"] == ["fcpe", "world", "crepe", "crepe-tiny", "rmvpe"]
    assert all(name in err.value.message for name in F0_METHOD_NAMES)


def test_registry_names_are_the_literal_and_targets_share_one_signature() -> None:
    assert F0_METHODS.names == get_args(F0Method) == F0_METHOD_NAMES
    assert "crepe" in F0_METHODS
    assert "yin" not in F0_METHODS
    expected = ["y", "sr", "n_frames", "hop_s", "fmin", "fmax", "device"]
    for choice in F0_METHODS:
        assert choice.description.endswith("."), choice.name
        assert len(choice.description) < 100, choice.name
        assert list(inspect.signature(choice.load()).parameters) == expected, choice.name


# CREPE. Known answers on harmonic tones over the singing range, silence and white noise.


@pytest.mark.parametrize("method", CREPES)
@pytest.mark.parametrize("f0", [82.0, 196.0, 440.0, 880.0])
def test_crepe_harmonic_tones_within_10_cents(method: str, f0: float) -> None:
    track = estimate_f0(harmonic_tone(f0, sr=SR, seconds=0.8), sr=SR, method=method)  # type: ignore[arg-type]
    assert track.method == method
    assert track.voiced.mean() > 0.9
    err = np.abs(cents(track.f0[track.voiced], f0))
    assert np.median(err) < 10
    assert np.percentile(err, 95) < 20


@pytest.mark.parametrize("method", CREPES)
def test_crepe_sine_220_is_220(method: str) -> None:
    t = np.arange(SR) / SR
    track = estimate_f0((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr=SR, method=method)  # type: ignore[arg-type]
    assert track.voiced.mean() > 0.9
    assert abs(np.median(cents(track.f0[track.voiced], 220.0))) < 10


@pytest.mark.parametrize("method", CREPES)
@pytest.mark.parametrize("amplitude", [0.3, 0.01])
def test_crepe_white_noise_is_unvoiced(method: str, amplitude: float) -> None:
    y = (amplitude * np.random.default_rng(1).standard_normal(2 * SR)).astype(np.float32)
    track = estimate_f0(y, sr=SR, method=method)  # type: ignore[arg-type]
    assert track.voiced.mean() < 0.02


@pytest.mark.parametrize("method", CREPES)
def test_crepe_silence_is_unvoiced_and_the_tone_around_it_voiced(method: str) -> None:
    tone = harmonic_tone(200.0, sr=SR, seconds=0.5)
    y = np.concatenate([tone, np.zeros(SR, np.float32), tone])
    track = estimate_f0(y, sr=SR, method=method)  # type: ignore[arg-type]
    assert len(track.f0) == 200
    assert track.voiced[5:45].all()
    assert track.voiced[155:195].all()
    assert not track.voiced[55:145].any()
    # Digital silence on its own: no louder frame to gate against, so CREPE's periodicity decides.
    assert not estimate_f0(np.zeros(SR, np.float32), sr=SR, method=method).voiced.any()  # type: ignore[arg-type]


def test_crepe_long_input_is_windowed_without_seams() -> None:
    # 35 s crosses the 30 s window boundary; the Viterbi path restarts in each window.
    y = harmonic_tone(180.0, sr=16_000, seconds=35.0)
    track = estimate_f0(y, sr=16_000, method="crepe-tiny")
    assert len(track.f0) == 3500
    assert track.voiced[5:-5].all()
    assert np.abs(cents(track.f0[5:-5], 180.0)).max() < 20


@pytest.mark.parametrize("capacity", ["tiny", pytest.param("full", marks=pytest.mark.slow)])
def test_crepe_fast_forward_equals_torchcrepe(capacity: str) -> None:
    import torch

    from autovoice.analysis.f0 import _crepe_forward
    from autovoice.models.cache import load_crepe

    model = load_crepe(capacity, "cpu")
    assert load_crepe(capacity, "cpu") is model  # loaded once per process
    tone = harmonic_tone(np.geomspace(80.0, 800.0, 16 * 1024), sr=16_000)  # 16 frames, 80..800 Hz
    frames = torch.from_numpy(tone.reshape(16, 1024))
    frames = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.inference_mode():
        theirs, ours = model(frames), _crepe_forward(model, frames)
    assert theirs.shape == ours.shape == (16, 360)
    assert float(theirs.max(1).values.min()) > 0.3  # every frame has a confident pitch bin
    assert torch.allclose(theirs, ours, atol=1e-5)


def test_crepe_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    estimate_f0(
        np.clip(2.0 * harmonic_tone(300.0, sr=SR, seconds=0.3), -1.5, 1.5), sr=SR, method="crepe-tiny"
    )
    assert capsys.readouterr().out == ""


@pytest.mark.shared_data
def test_crepe_tiny_keeps_the_voiced_frames_of_clean_speech(speech_dir: Path) -> None:
    """Frames Harvest and FCPE both call voiced at the same pitch (within 50 cents) are surely voiced:
    CREPE keeps most of them, at that pitch."""
    reference = kept = agree = 0
    for speaker in ("367", "1688", "3080", "2609"):
        y = load(speaker_files(speaker)[0], mono=True)[0][: 16_000 * 4]
        world, fcpe = (estimate_f0(y, sr=16_000, method=m).f0 for m in ("world", "fcpe"))
        sure = (world > 0) & (fcpe > 0)
        sure[sure] = np.abs(cents(fcpe[sure], world[sure])) < 50
        got = estimate_f0(y, sr=16_000, method="crepe-tiny").f0
        both = sure & (got > 0)
        reference += int(sure.sum())
        kept += int(both.sum())
        agree += int((np.abs(cents(got[both], world[both])) < 50).sum())
    assert reference > 300
    assert kept / reference > 0.85
    assert agree / kept > 0.95
