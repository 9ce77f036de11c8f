"""End-to-end conversion: a sung melody survives, the voice moves to the target, layouts are kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from autovoice.analysis import cents, estimate_f0, midi_to_hz
from autovoice.errors import AutoVoiceError, ParameterError
from autovoice.metrics.similarity import cosine_similarity, speaker_embedding
from autovoice.pipeline import ConversionOptions, convert_audio, convert_file, convert_speech
from autovoice.pipeline.enroll import build_profile
from autovoice.profiles import VoiceProfile
from tests.support import FEMALE, SPEECH, speaker_files

MELODY = [60, 62, 64, 65, 67, 65, 64, 62]  # C4 D4 E4 F4 G4 F4 E4 D4


@pytest.fixture(scope="module")
def female_profile() -> VoiceProfile:
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    return build_profile(speaker_files(FEMALE[2])[:5], name="target")


@pytest.fixture(scope="module")
def sung() -> tuple[np.ndarray, int, np.ndarray]:
    """Piper's built-in (male) voice singing MELODY: speech re-pitched note by note with WORLD.

    Returns the vocal, its rate and the melody in Hz per 10 ms frame (0 = unvoiced).
    """
    import pyworld

    from autovoice import tts

    y, sr = tts.synthesize("La la la la, la la la la. Na na na na, na na na na.")
    x = y.astype(np.float64)
    f0, t = pyworld.harvest(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=10.0)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    note_of_frame = (np.arange(len(f0)) * len(MELODY) // len(f0)).clip(0, len(MELODY) - 1)
    melody = np.where(f0 > 0, midi_to_hz(np.array(MELODY)[note_of_frame] - 12), 0.0)  # an octave down
    out = pyworld.synthesize(melody, sp, ap, sr, frame_period=10.0)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32), sr, melody


@pytest.mark.shared_data
def test_sung_melody_is_kept_after_the_planned_shift(
    female_profile: VoiceProfile, sung: tuple[np.ndarray, int, np.ndarray]
) -> None:
    y, sr, melody = sung
    res = convert_audio(
        y, sr=sr, profile=female_profile, options=ConversionOptions(auto_key=True, separation="none")
    )
    shift = res.plan.shift_semitones
    assert shift == round(shift), "songs move by whole semitones"
    assert res.plan.ideal_shift_semitones is not None
    assert abs(shift - res.plan.ideal_shift_semitones) <= 0.5  # nearest semitone (no accompaniment)
    assert shift > 0  # up, into the female target's range
    out = estimate_f0(res.mix[0], sr=sr)
    n = min(len(out.f0), len(melody))
    both = (out.f0[:n] > 0) & (melody[:n] > 0)
    assert both.mean() > 0.3
    err = cents(out.f0[:n][both], melody[:n][both] * 2 ** (shift / 12))
    assert np.median(np.abs(err)) < 20
    assert res.report is not None
    assert res.report.pitch.median_abs_cents < 20


@pytest.mark.shared_data
def test_voice_moves_toward_the_target(female_profile: VoiceProfile) -> None:
    from autovoice.audio import load

    y, sr = load(speaker_files("1688")[6], mono=True)
    out, _ = convert_speech(y, sr=sr, profile=female_profile)
    before = cosine_similarity(speaker_embedding(y, sr=sr), female_profile.embedding)
    after = cosine_similarity(speaker_embedding(out, sr=sr), female_profile.embedding)
    assert after > before + 0.05


@pytest.mark.shared_data
def test_stereo_44k_in_stereo_44k_out_same_length(
    female_profile: VoiceProfile, sung: tuple[np.ndarray, int, np.ndarray], tmp_path: Path
) -> None:
    from autovoice.audio import resample

    y, sr, _ = sung
    y44 = resample(y, orig_sr=sr, target_sr=44_100)
    stereo = np.stack([y44, 0.8 * y44])
    src = tmp_path / "song.flac"
    sf.write(str(src), stereo.T, 44_100)
    out = tmp_path / "out.wav"
    options = ConversionOptions(separation="none", pitch_shift=12, preset="fast")
    res = convert_file(src, profile=female_profile, output=out, options=options)
    data, out_sr = sf.read(str(out), always_2d=True)
    assert out_sr == 44_100
    assert data.shape == (stereo.shape[1], 2)
    report = json.loads((tmp_path / "out.wav.report.json").read_text())
    for key in ("output", "pitch_shift_semitones", "audio_seconds", "processing_seconds", "rtf", "metrics"):
        assert key in report
    assert report["pitch_shift_semitones"] == 12
    assert res.output == out


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"preset": "ultra"}, "invalid_preset"),
        ({"separation": "magic"}, "invalid_separation"),
        ({"engine": "nope"}, "unknown_engine"),
        ({"f0_method": "yin"}, "invalid_f0_method"),
        ({"metrics": "some"}, "invalid_metrics_level"),
        ({"pitch_shift": 30.0}, "invalid_pitch_shift"),
        ({"pitch_shift": "nan"}, "invalid_pitch_shift"),
        ({"pitch_shift": 2.0, "auto_key": True}, "invalid_parameter"),
        ({"colour": "blue"}, "invalid_parameter"),
        ({"engine_options": {"knn_k": 99}}, "invalid_engine_options"),
        ({"engine_options": {"no_such": 1}}, "invalid_engine_options"),
        ({"engine_options": "{not json"}, "invalid_parameter"),
    ],
)
def test_bad_options_are_refused_once_with_a_stable_code(fields: dict[str, object], code: str) -> None:
    with pytest.raises(ParameterError) as err:
        ConversionOptions.parse(fields)
    assert err.value.code == code
    if code.startswith(
        ("invalid_preset", "invalid_separation", "unknown_engine", "invalid_f0", "invalid_metrics")
    ):
        assert "Valid:" in err.value.message
        assert err.value.details["valid"]
    assert "--" not in err.value.message  # messages name fields, never CLI flags


def test_options_round_trip_through_the_job_params() -> None:
    opts = ConversionOptions.parse(
        {
            "engine": "world",
            "preset": "fast",
            "pitch_shift": "3.5",
            "metrics": "off",
            "engine_options": '{"knn_k": 2}',
        }
    )
    assert opts.pitch_shift == 3.5
    assert opts.engine_options == {"knn_k": 2}
    params = json.loads(json.dumps(opts.to_params()))
    assert ConversionOptions.parse(params) == opts
    assert ConversionOptions.parse({}).resolved_f0_method() == "fcpe"
    assert ConversionOptions.parse({"f0_method": "world"}).resolved_f0_method() == "world"


def test_missing_output_folder_fails_before_any_work(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(str(src), np.zeros(16_000, np.float32), 16_000)
    profile: VoiceProfile = object()  # type: ignore[assignment]  # never reached
    with pytest.raises(ParameterError) as err:
        convert_file(src, profile=profile, output=tmp_path / "nowhere" / "out.wav")
    assert err.value.code == "output_dir_missing"
    with pytest.raises(ParameterError) as err:
        convert_file(src, profile=profile, output=tmp_path / "out.aiff")
    assert err.value.code == "unsupported_output_format"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.shared_data
def test_failed_conversion_leaves_no_output(female_profile: VoiceProfile, tmp_path: Path) -> None:
    src = tmp_path / "silence.wav"
    sf.write(str(src), np.zeros(32_000, np.float32), 16_000)
    with pytest.raises(AutoVoiceError) as err:
        convert_file(
            src,
            profile=female_profile,
            output=tmp_path / "out.wav",
            options=ConversionOptions(separation="none"),
        )
    assert err.value.code == "audio_silent"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silence.wav"]
