"""The quality report: JSON shape, RTF, levels, warnings, and measurement of known "conversions"."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autovoice.metrics.report as report_module
from autovoice.analysis import F0Track, estimate_f0
from autovoice.audio import load
from autovoice.errors import ParameterError
from autovoice.metrics import (
    EXCERPT_SECONDS,
    FAST_SIMILARITY_SECONDS,
    REPORT_FORMAT_VERSION,
    REPORT_LEVELS,
    WARNING_CODES,
    Dnsmos,
    QualityReport,
    input_warnings,
    pitch_accuracy,
    quality_report,
    rtf,
    speaker_embedding,
)
from tests.support import SONG, harmonic_tone, speaker_files

KEYS = {
    "format_version",
    "level",
    "source_dnsmos",
    "coverage",
    "timings",
    "pitch",
    "similarity_to_target",
    "similarity_source_to_target",
    "similarity_gain",
    "identity",
    "dnsmos",
    "input_seconds",
    "output_seconds",
    "processing_seconds",
    "rtf",
    "metrics_seconds",
    "f0_method",
    "hop_s",
    "warnings",
    "extra",
}
PITCH_KEYS = {
    "rmse_hz",
    "rmse_cents",
    "median_abs_cents",
    "mean_cents",
    "frac_off_50_cents",
    "correlation",
    "voiced_frames_compared",
    "voicing_agreement",
}
DNSMOS_KEYS = {"sig", "bak", "ovrl", "p808", "windows"}
COVERAGE_KEYS = {
    "pitch_seconds",
    "similarity_seconds",
    "similarity_source_seconds",
    "dnsmos_seconds",
    "excerpts",
}
SEMITONE = 2 ** (1 / 12)


def _roundtrip(report: QualityReport, *, contours: bool = False) -> dict[str, Any]:
    doc = report.to_dict(contours=contours)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    return doc


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def test_to_dict_has_documented_keys_and_nulls_for_nan() -> None:
    no_pitch = pitch_accuracy(np.zeros(10), np.zeros(10))  # nothing voiced: NaN errors
    report = QualityReport(
        pitch=no_pitch,
        similarity_to_target=math.nan,
        similarity_source_to_target=np.float32(0.5),  # type: ignore[arg-type]
        similarity_gain=math.nan,
        dnsmos=Dnsmos.unmeasured(),
        input_seconds=10.0,
        output_seconds=10.0,
        processing_seconds=5.0,
        rtf=0.5,
        metrics_seconds=1.0,
        warnings=[{"code": "dnsmos_unmeasured", "message": "too short"}],
        extra={"engine": "knn", "gains": np.array([1.0, math.inf])},
    )
    doc = _roundtrip(report)
    assert set(doc) == KEYS
    assert doc["format_version"] == REPORT_FORMAT_VERSION
    assert set(doc["pitch"]) == PITCH_KEYS
    assert set(doc["dnsmos"]) == DNSMOS_KEYS
    assert doc["similarity_to_target"] is None
    assert doc["similarity_source_to_target"] == 0.5
    assert doc["dnsmos"] == {"sig": None, "bak": None, "ovrl": None, "p808": None, "windows": 0}
    assert doc["extra"] == {"engine": "knn", "gains": [1.0, None]}
    assert doc["warnings"] == [{"code": "dnsmos_unmeasured", "message": "too short"}]
    assert set(doc["coverage"]) == COVERAGE_KEYS
    assert doc["source_dnsmos"]["ovrl"] is None


def test_rtf() -> None:
    assert rtf(5.0, 10.0) == 0.5
    assert rtf(0.0, 1.0) == 0.0
    for processing, audio in [(1.0, 0.0), (1.0, -2.0), (1.0, math.nan), (-1.0, 1.0), (math.inf, 1.0)]:
        with pytest.raises(ParameterError) as err:
            rtf(processing, audio)
        assert err.value.code == "invalid_parameter"


def test_short_tone_transposed_as_planned() -> None:
    """A tone "converted" up a semitone, measured against a +1 semitone plan on a 20 ms grid."""
    sr = 44_100
    seconds = 1.5  # below DNSMOS's 2 s: the report still measures everything else
    t = np.arange(int(sr * seconds)) / sr
    f_src = 200.0 * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5 * t))  # vibrato of +-50 cents
    source = harmonic_tone(f_src, sr=sr)
    converted = harmonic_tone(f_src * SEMITONE, sr=sr)
    src_track = estimate_f0(source, sr=sr, hop_s=0.02)
    plan = F0Track(f0=src_track.f0 * SEMITONE, hop_s=0.02, method=src_track.method)
    calls: list[tuple[float, str]] = []
    report = quality_report(
        source=source,
        converted=converted,
        sr=sr,
        intended_f0=plan,
        profile_embedding=_unit(np.ones(256)),
        processing_seconds=0.75,
        extra={"engine": "test"},
        progress=lambda f, stage: calls.append((f, stage)),
    )
    assert report.pitch.voiced_frames_compared > 100  # regridded from 20 ms to 10 ms frames
    assert report.pitch.median_abs_cents < 15
    assert abs(report.pitch.mean_cents) < 15
    assert report.pitch.correlation > 0.9
    assert report.rtf == pytest.approx(0.5)
    assert report.input_seconds == report.output_seconds == pytest.approx(seconds)
    assert math.isnan(report.dnsmos.ovrl)
    assert [w["code"] for w in report.warnings] == ["dnsmos_unmeasured"]
    assert report.level == "fast"  # the default
    # Shorter than one excerpt: all of it.
    assert [list(e) for e in report.coverage.excerpts] == [[0.0, pytest.approx(seconds)]]
    assert report.metrics_seconds > 0
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    doc = _roundtrip(report)
    assert set(doc) == KEYS
    assert doc["dnsmos"]["ovrl"] is None
    assert doc["extra"] == {"engine": "test"}


@pytest.mark.shared_data
def test_identity_conversion_of_real_speech(speech_dir: Path) -> None:
    """Returning the source unchanged: perfect pitch, zero similarity gain, a plausible DNSMOS."""
    sr = 16_000
    source, _ = load(speaker_files("2033")[1], sr=sr, mono=True)
    target, _ = load(speaker_files("367")[1], sr=sr, mono=True)
    intended = estimate_f0(source, sr=sr).f0
    report = quality_report(
        source=source,
        converted=source.copy(),
        sr=sr,
        intended_f0=intended,
        profile_embedding=speaker_embedding(target, sr=sr),
        processing_seconds=1.0,
    )
    assert report.pitch.rmse_cents == 0
    assert report.pitch.voicing_agreement == 1.0
    assert report.similarity_to_target == pytest.approx(report.similarity_source_to_target, abs=1e-6)
    assert report.similarity_gain == pytest.approx(0.0, abs=1e-6)
    assert 0.2 < report.similarity_to_target < 0.75  # a man against a woman's profile
    assert 2.0 < report.dnsmos.ovrl <= 5.0
    assert report.warnings == []
    assert report.rtf == pytest.approx(1.0 / (len(source) / sr))
    assert set(_roundtrip(report)) == KEYS


def test_bad_parameters_are_refused_before_any_work() -> None:
    y = harmonic_tone(200.0, sr=16_000, seconds=1.0)
    good = {
        "source": y,
        "converted": y,
        "sr": 16_000,
        "intended_f0": np.full(100, 200.0),
        "profile_embedding": _unit(np.ones(256)),
        "processing_seconds": 1.0,
    }
    for change in (
        {"profile_embedding": np.ones(128)},
        {"processing_seconds": -1.0},
        {"sr": 0},
        {"dnsmos_hop_s": 0.0},
        {"intended_f0": np.full(300, 200.0)},  # a 1 s vocal has 100 frames of 10 ms
        {"intended_f0": np.full(300, 200.0), "level": "full"},
        {"intended_f0": np.zeros(0)},
    ):
        with pytest.raises(ParameterError) as err:
            quality_report(**{**good, **change})  # type: ignore[arg-type]
        assert err.value.code == "invalid_parameter"
    with pytest.raises(ParameterError) as err:
        quality_report(**{**good, "f0_method": "yin"})  # type: ignore[arg-type]
    assert err.value.code == "invalid_f0_method"


@pytest.mark.parametrize("level", ["off", "medium", "", "FAST", None])
def test_bad_level_is_refused_before_any_work(level: Any) -> None:
    y = np.zeros(16_000, np.float32)  # silence: any work on it would fail differently
    with pytest.raises(ParameterError) as err:
        quality_report(
            source=y,
            converted=y,
            sr=16_000,
            intended_f0=np.zeros(100),
            profile_embedding=_unit(np.ones(256)),
            processing_seconds=1.0,
            level=level,
        )
    assert err.value.code == "invalid_metrics_level"
    assert err.value.details["valid"] == ["full", "fast"]


def test_levels_are_named_once() -> None:
    assert REPORT_LEVELS == ("full", "fast", "off")


# -- levels on real speech -------------------------------------------------------------------------
def _count_tracks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the duration (s) of every F0 re-track the report runs; the real tracker still runs."""
    seconds: list[float] = []
    real = estimate_f0

    def counting(y: np.ndarray, *, sr: int, **kwargs: Any) -> F0Track:
        seconds.append(len(y) / sr)
        return real(y, sr=sr, **kwargs)

    monkeypatch.setattr(report_module, "estimate_f0", counting)
    return seconds


def _identity_report(y: np.ndarray, level: str, **kwargs: Any) -> QualityReport:
    sr = 16_000
    target, _ = load(speaker_files("367")[1], sr=sr, mono=True)
    return quality_report(
        source=y,
        converted=y.copy(),
        sr=sr,
        intended_f0=estimate_f0(y, sr=sr),
        profile_embedding=speaker_embedding(target, sr=sr),
        processing_seconds=1.0,
        level=level,  # type: ignore[arg-type]
        **kwargs,
    )


@pytest.mark.shared_data
def test_fast_measures_a_bounded_amount_of_a_long_input(
    speech_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """67 s of speech: three 9.01 s excerpts for DNSMOS and pitch, at most 20 s for similarity."""
    y = np.concatenate([load(f, sr=16_000, mono=True)[0] for f in speaker_files("1688")])
    assert len(y) / 16_000 > 60
    tracks = _count_tracks(monkeypatch)
    report = _identity_report(y, "fast")
    cov = report.coverage
    assert report.level == "fast"
    assert len(cov.excerpts) == 3
    assert tracks == [pytest.approx(EXCERPT_SECONDS)] * 3  # only the excerpts are re-tracked
    assert cov.pitch_seconds == pytest.approx(3 * EXCERPT_SECONDS, abs=0.02)
    assert cov.dnsmos_seconds == pytest.approx(3 * EXCERPT_SECONDS)
    assert report.dnsmos.windows == report.source_dnsmos.windows == 3
    assert 10 < cov.similarity_seconds <= FAST_SIMILARITY_SECONDS
    assert cov.similarity_source_seconds == pytest.approx(cov.similarity_seconds)
    # Re-tracking excerpts, not the whole, moves a few boundary frames only.
    assert report.pitch.voiced_frames_compared > 1000
    assert report.pitch.median_abs_cents < 1
    assert report.pitch.voicing_agreement > 0.95
    assert report.similarity_gain == pytest.approx(0.0, abs=1e-6)
    assert report.dnsmos.ovrl == pytest.approx(report.source_dnsmos.ovrl)
    assert report.warnings == []
    assert set(report.timings) == {"pitch", "similarity", "dnsmos"}
    # Unmeasured frames are NaN in the contour, null in the JSON, and only there.
    assert report.achieved_f0 is not None
    assert report.intended_f0 is not None
    measured = ~np.isnan(report.achieved_f0)
    assert measured.sum() == round(cov.pitch_seconds / report.hop_s)
    doc = _roundtrip(report, contours=True)
    assert len(doc["f0"]["achieved"]) == len(doc["f0"]["intended"]) == len(report.intended_f0)
    assert sum(v is None for v in doc["f0"]["achieved"]) == (~measured).sum()


@pytest.mark.shared_data
def test_full_measures_everything_with_one_f0_track(
    speech_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, _ = load(speaker_files("1688")[0], sr=16_000, mono=True)  # 15 s
    seconds = len(y) / 16_000
    tracks = _count_tracks(monkeypatch)
    full = _identity_report(y, "full", dnsmos_hop_s=EXCERPT_SECONDS)
    assert tracks == [pytest.approx(seconds)]
    assert full.level == "full"
    assert full.coverage.pitch_seconds == full.coverage.dnsmos_seconds == pytest.approx(seconds)
    assert [list(e) for e in full.coverage.excerpts] == [[0.0, pytest.approx(seconds)]]
    assert full.dnsmos.windows == full.source_dnsmos.windows == 2  # at 0 s and aligned to the end
    assert full.pitch.rmse_cents == 0
    assert full.pitch.voiced_frames_compared > 600

    tracks.clear()
    fast = _identity_report(y, "fast")
    assert tracks == [pytest.approx(EXCERPT_SECONDS)]  # 15 s holds one excerpt
    assert fast.coverage.pitch_seconds == pytest.approx(EXCERPT_SECONDS)
    assert fast.dnsmos.windows == 1
    assert fast.coverage.similarity_seconds < full.coverage.similarity_seconds
    # Same voice, same quality: the levels agree on what they both measure.
    assert fast.similarity_to_target == pytest.approx(full.similarity_to_target, abs=0.05)
    assert fast.dnsmos.ovrl == pytest.approx(full.dnsmos.ovrl, abs=0.3)


def test_to_dict_leaves_contours_out_unless_asked() -> None:
    sr = 16_000
    y = harmonic_tone(200.0, sr=sr, seconds=2.5)
    report = quality_report(
        source=y,
        converted=y,
        sr=sr,
        intended_f0=np.full(250, 200.0),
        profile_embedding=_unit(np.ones(256)),
        processing_seconds=1.0,
    )
    doc = _roundtrip(report)
    assert set(doc) == KEYS
    assert len(json.dumps(doc)) < 3000
    with_f0 = _roundtrip(report, contours=True)
    assert set(with_f0) == KEYS | {"f0"}
    assert set(with_f0["f0"]) == {"hop_s", "intended", "achieved"}
    assert len(with_f0["f0"]["intended"]) == 250
    assert with_f0["f0"]["intended"][0] == 200.0


# -- warnings -------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_noisy_output_is_flagged_degraded_and_a_clean_copy_is_not(speech_dir: Path) -> None:
    y, _ = load(speaker_files("1688")[0], sr=16_000, mono=True)
    clean = _identity_report(y, "fast")
    assert clean.warnings == []
    assert input_warnings(clean, separated=False) == []  # clean speech is a vocal
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(np.mean(y**2))  # 0 dB SNR
    sr = 16_000
    noisy = quality_report(
        source=y,
        converted=np.clip(y + noise, -1, 1),
        sr=sr,
        intended_f0=estimate_f0(y, sr=sr),
        profile_embedding=speaker_embedding(y, sr=sr),
        processing_seconds=1.0,
    )
    codes = [w["code"] for w in noisy.warnings]
    assert codes == ["quality_degraded"], noisy.warnings
    assert noisy.source_dnsmos.ovrl - noisy.dnsmos.ovrl > 1.0
    assert "DNSMOS" in noisy.warnings[0]["message"]
    assert all(set(w) == {"code", "message"} and w["code"] in WARNING_CODES for w in noisy.warnings)


@pytest.mark.shared_data
@pytest.mark.skipif(not SONG.is_file(), reason=f"shared song not found at {SONG}")
def test_full_mix_taken_as_a_vocal_is_flagged() -> None:
    y, sr = load(SONG, sr=44_100, mono=True)
    mix = y[30 * sr : 50 * sr]  # 20 s of the full mix, lead vocal and band
    report = quality_report(
        source=mix,
        converted=mix,
        sr=sr,
        intended_f0=estimate_f0(mix, sr=sr),
        profile_embedding=_unit(np.ones(256)),
        processing_seconds=1.0,
    )
    warned = input_warnings(report, separated=False)
    assert [w["code"] for w in warned] == ["input_not_vocal"]
    assert "--" not in warned[0]["message"]  # names no CLI flag
    assert input_warnings(report, separated=True) == []
