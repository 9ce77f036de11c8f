"""The quality report: JSON shape, RTF, and end-to-end measurement of known "conversions"."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autovoice.analysis import F0Track, estimate_f0
from autovoice.audio import load
from autovoice.errors import ParameterError
from autovoice.metrics import (
    REPORT_FORMAT_VERSION,
    Dnsmos,
    QualityReport,
    pitch_accuracy,
    quality_report,
    rtf,
    speaker_embedding,
)
from tests.support import harmonic_tone, speaker_files

KEYS = {
    "format_version",
    "pitch",
    "similarity_to_target",
    "similarity_source_to_target",
    "similarity_gain",
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
SEMITONE = 2 ** (1 / 12)


def _roundtrip(report: QualityReport) -> dict[str, Any]:
    doc = report.to_dict()
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
        warnings=["dnsmos: too short"],
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
    assert any(w.startswith("dnsmos:") for w in report.warnings)
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
    ):
        with pytest.raises(ParameterError) as err:
            quality_report(**{**good, **change})  # type: ignore[arg-type]
        assert err.value.code == "invalid_parameter"
