"""The ``world`` engine: profile features, length/rate, melody kept, speaker moved, bad inputs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autovoice.analysis import F0Track, cents, estimate_f0, vocal_range
from autovoice.audio import load
from autovoice.engines import get_engine
from autovoice.engines.world.dsp import N_CEP
from autovoice.engines.world.engine import WorldEngine
from autovoice.engines.world.mapping import FEATURE_VERSION
from autovoice.engines.world.options import PRESET_OPTIONS
from autovoice.errors import AudioError, AutoVoiceError, ParameterError
from autovoice.profiles.profile import VoiceProfile
from tests.support import (
    F0_HOP_S,
    FEMALE,
    MALE,
    engine_profile,
    harmonic_tone,
    known_track,
    melody,
    speaker_files,
    voice_like,
    voicing,
)

HOP_S = F0_HOP_S
KEYS = {
    "version": ((1,), np.int32),
    "mcep_mean_v": ((N_CEP,), np.float32),
    "mcep_std_v": ((N_CEP,), np.float32),
    "mcep_mean_u": ((N_CEP,), np.float32),
    "mcep_std_u": ((N_CEP,), np.float32),
    "f0_stats": ((3,), np.float32),
}


def _profile(features: dict[str, np.ndarray], name: str = "target") -> VoiceProfile:
    """A profile holding only the given world features (keys without the ``world.`` prefix)."""
    return engine_profile({f"world.{k}": v for k, v in features.items()}, name)


@pytest.fixture(scope="module")
def tone_profile() -> VoiceProfile:
    """A profile from a generated 'voice' at ~200 Hz (6 s at 16 kHz)."""
    sr = 16_000
    f = melody(6.0, sr=sr, notes=(190.0, 210.0, 230.0), vibrato=0.01)
    y = voice_like(f, sr=sr, seed=1)
    feats = WorldEngine().profile_features(y, sr=sr, f0=known_track(f, sr=sr, voiced=voicing(len(y), sr=sr)))
    return _profile(feats)


# ------------------------------------------------------------------------------------------------
# profile features
# ------------------------------------------------------------------------------------------------
def test_profile_features_keys_shapes_and_size(tone_profile: VoiceProfile) -> None:
    feats = {k.removeprefix("world."): v for k, v in tone_profile.features.items()}
    assert set(feats) == {*KEYS, "knn_mcep"}
    for key, (shape, dtype) in KEYS.items():
        assert feats[key].shape == shape, key
        assert feats[key].dtype == dtype, key
    n = feats["knn_mcep"].shape[0]
    assert 100 < n <= 600  # voiced 10 ms frames of 6 s
    assert feats["knn_mcep"].shape == (n, N_CEP)
    assert feats["knn_mcep"].dtype == np.float16
    assert int(feats["version"][0]) == FEATURE_VERSION
    assert 185 < feats["f0_stats"][0] < 235  # median F0 of the generated voice
    assert (feats["mcep_std_v"] > 0).all()
    assert (feats["mcep_std_u"] > 0).all()
    assert all(np.isfinite(v.astype(np.float64)).all() for v in feats.values())
    assert sum(v.nbytes for v in feats.values()) < 5 * 2**20


def test_profile_features_do_not_depend_on_the_sample_rate(tone_profile: VoiceProfile) -> None:
    sr = 44_100
    f = melody(6.0, sr=sr, notes=(190.0, 210.0, 230.0), vibrato=0.01)
    y = voice_like(f, sr=sr, seed=1)
    feats = WorldEngine().profile_features(y, sr=sr, f0=known_track(f, sr=sr, voiced=voicing(len(y), sr=sr)))
    ref = tone_profile.features["world.mcep_mean_v"]
    # Same voice at another rate: the same voiced mean cepstrum, within a small tolerance.
    assert np.abs(feats["mcep_mean_v"][1:20] - ref[1:20]).max() < 0.5


# ------------------------------------------------------------------------------------------------
# conversion: length, rate, melody
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sr", [16_000, 22_050, 44_100, 48_000])
def test_convert_keeps_length_rate_and_dtype(sr: int, tone_profile: VoiceProfile) -> None:
    f = melody(1.234, sr=sr, notes=(150.0, 170.0))
    y = voice_like(f, sr=sr)
    track = known_track(f, sr=sr, voiced=voicing(len(y), sr=sr))
    out = WorldEngine().convert(y, sr=sr, f0=track, target_f0=track.f0 * 1.2, profile=tone_profile)
    assert out.shape == y.shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= 1.0
    # Loud where the input is loud: the converted vocal is neither silent nor blown up.
    level = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(y**2)))
    assert -6 < level < 6


def test_band_above_8k_is_kept_at_44k(tone_profile: VoiceProfile) -> None:
    """The profile covers 0..8 kHz (16 kHz enrollment); a 44.1 kHz vocal keeps its own upper band."""
    sr = 44_100
    f = melody(2.0, sr=sr, notes=(200.0, 180.0))
    y = harmonic_tone(f, sr=sr, n_harmonics=80)  # harmonics up to 16 kHz
    track = known_track(f, sr=sr)
    out = WorldEngine().convert(y, sr=sr, f0=track, target_f0=track.f0, profile=tone_profile)

    def band_db(v: np.ndarray, lo: float, hi: float) -> float:
        spec = np.abs(np.fft.rfft(v)) ** 2
        freqs = np.fft.rfftfreq(len(v), 1 / sr)
        return float(10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].sum()))

    assert abs(band_db(out, 9000, 15000) - band_db(y, 9000, 15000)) < 3.0


@pytest.mark.parametrize("preset", list(PRESET_OPTIONS))
def test_known_melody_is_kept_within_20_cents(preset: str, tone_profile: VoiceProfile) -> None:
    sr = 44_100
    f = melody(3.0, sr=sr, notes=(220.0, 247.0, 262.0, 196.0), vibrato=0.02)
    y = harmonic_tone(f, sr=sr, n_harmonics=30)
    track = known_track(f, sr=sr)
    target = (track.f0 * 2 ** (3 / 12)).astype(np.float32)  # planned: three semitones up
    out = WorldEngine(preset=preset).convert(  # type: ignore[arg-type]
        y, sr=sr, f0=track, target_f0=target, profile=tone_profile
    )
    got = estimate_f0(out, sr=sr).f0
    inner = slice(10, len(target) - 10)
    err = np.abs(cents(got[inner], target[inner]))
    assert np.isfinite(err).mean() > 0.9, "converted tone reported unvoiced"
    assert np.nanmedian(err) < 20


def test_windows_join_without_seams(tone_profile: VoiceProfile) -> None:
    """Short processing windows give the same result as one window (pulse phase carried over)."""
    sr = 16_000
    f = melody(7.0, sr=sr, notes=(200.0, 180.0, 220.0), vibrato=0.02)
    y = harmonic_tone(f, sr=sr, n_harmonics=30)
    track = known_track(f, sr=sr)
    one = WorldEngine().convert(y, sr=sr, f0=track, target_f0=track.f0, profile=tone_profile)
    many = WorldEngine(options={"window_s": 1.5}).convert(
        y, sr=sr, f0=track, target_f0=track.f0, profile=tone_profile
    )
    frame = int(0.01 * sr)
    n = len(y) // frame

    def db(v: np.ndarray) -> np.ndarray:
        return np.asarray(10 * np.log10(np.mean(v[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12))

    assert np.abs(db(one) - db(many))[5:-5].max() < 1.5
    assert np.corrcoef(one, many)[0, 1] > 0.95


def test_progress_and_reproducibility(tone_profile: VoiceProfile) -> None:
    sr = 16_000
    f = melody(2.0, sr=sr, notes=(200.0,))
    y = voice_like(f, sr=sr)
    track = known_track(f, sr=sr, voiced=voicing(len(y), sr=sr))
    calls: list[tuple[float, str]] = []
    a = WorldEngine().convert(
        y,
        sr=sr,
        f0=track,
        target_f0=track.f0,
        profile=tone_profile,
        progress=lambda x, s: calls.append((x, s)),
    )
    b = WorldEngine().convert(y, sr=sr, f0=track, target_f0=track.f0, profile=tone_profile)
    assert np.array_equal(a, b)
    assert calls[0] == (0.0, "convert")
    assert calls[-1] == (1.0, "convert")
    assert all(x1 <= x2 for (x1, _), (x2, _) in itertools.pairwise(calls))


def test_registry_gives_the_world_engine() -> None:
    engine = get_engine("world")
    assert isinstance(engine, WorldEngine)
    assert engine.name == "world"
    assert engine.preset == "balanced"


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
def _bad_cases(profile: VoiceProfile) -> list[tuple[str, dict[str, Any], type[AutoVoiceError], str]]:
    sr = 16_000
    y = harmonic_tone(200.0, sr=sr, seconds=1.0)
    track = F0Track(np.full(100, 200.0, np.float32), HOP_S, "known")
    ok: dict[str, Any] = {"y": y, "sr": sr, "f0": track, "target_f0": track.f0, "profile": profile}
    stale = _profile({k.removeprefix("world."): v for k, v in profile.features.items()})
    stale.features["world.version"] = np.array([FEATURE_VERSION + 1], np.int32)
    return [
        ("empty audio", {**ok, "y": np.zeros(0, np.float32)}, AudioError, "audio_empty"),
        ("nan audio", {**ok, "y": np.full(sr, np.nan, np.float32)}, AudioError, "audio_invalid_samples"),
        ("stereo", {**ok, "y": np.stack([y, y])}, ParameterError, "invalid_parameter"),
        ("8 kHz", {**ok, "sr": 8000, "y": y[::2]}, ParameterError, "invalid_parameter"),
        ("target length", {**ok, "target_f0": track.f0[:50]}, ParameterError, "invalid_parameter"),
        ("negative target", {**ok, "target_f0": -track.f0}, ParameterError, "invalid_parameter"),
        (
            "track too short",
            {**ok, "f0": F0Track(track.f0[:40], HOP_S, "known"), "target_f0": track.f0[:40]},
            ParameterError,
            "invalid_parameter",
        ),
        ("no world features", {**ok, "profile": _profile({})}, ParameterError, "profile_outdated"),
        ("stale features", {**ok, "profile": stale}, ParameterError, "profile_outdated"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_bad_input_raises_typed_errors(case: int, tone_profile: VoiceProfile) -> None:
    label, kwargs, error, code = _bad_cases(tone_profile)[case]
    y = kwargs.pop("y")
    with pytest.raises(error) as err:
        WorldEngine().convert(y, **kwargs)
    assert err.value.code == code, label
    if code == "profile_outdated":
        assert "Rebuild it from its recordings" in err.value.message
        assert err.value.details["rebuild"] == "autovoice profile create 'target' FILE..."


def test_bad_profile_input_and_preset() -> None:
    sr = 16_000
    with pytest.raises(AudioError) as err:
        WorldEngine().profile_features(np.zeros(0, np.float32), sr=sr, f0=F0Track(np.zeros(0), HOP_S, "x"))
    assert err.value.code == "audio_empty"
    y = harmonic_tone(200.0, sr=sr, seconds=2.0)
    with pytest.raises(AudioError) as err:  # a track with (almost) nothing voiced
        WorldEngine().profile_features(y, sr=sr, f0=F0Track(np.zeros(200, np.float32), HOP_S, "x"))
    assert err.value.code == "insufficient_voiced_audio"
    with pytest.raises(ParameterError) as perr:
        WorldEngine(preset="ultra")  # type: ignore[arg-type]
    assert perr.value.code == "invalid_preset"
    with pytest.raises(ParameterError) as perr:
        WorldEngine(options={"knn_kk": 3})
    assert perr.value.code == "invalid_engine_options"


def test_malformed_features_are_incompatible(tone_profile: VoiceProfile) -> None:
    sr = 16_000
    y = harmonic_tone(200.0, sr=sr, seconds=1.0)
    track = F0Track(np.full(100, 200.0, np.float32), HOP_S, "known")
    feats = {k.removeprefix("world."): v for k, v in tone_profile.features.items()}
    broken = _profile({**feats, "knn_mcep": feats["knn_mcep"][:, :10]})
    with pytest.raises(ParameterError) as err:
        WorldEngine().convert(y, sr=sr, f0=track, target_f0=track.f0, profile=broken)
    assert err.value.code == "profile_incompatible"
    assert "world.knn_mcep" in err.value.message


# ------------------------------------------------------------------------------------------------
# real speech: the speaker moves toward the profile
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(("source", "target"), [(MALE[0], FEMALE[1]), (FEMALE[2], MALE[3])])
def test_speech_moves_toward_the_target_speaker(speech_dir: Path, source: str, target: str) -> None:
    from resemblyzer import preprocess_wav

    from autovoice.models.cache import load_voice_encoder

    sr = 16_000
    parts = []
    for p in speaker_files(target)[:6]:
        y, _ = load(p, sr=sr, mono=True)
        parts.append(np.pad(y, (0, -len(y) % 160)))
        if sum(map(len, parts)) > 20 * sr:
            break
    enroll = np.concatenate(parts)
    enroll_track = estimate_f0(enroll, sr=sr)
    feats = WorldEngine().profile_features(enroll, sr=sr, f0=enroll_track)
    y, _ = load(speaker_files(source)[6], sr=sr, mono=True)
    y = y[: 6 * sr]
    track = estimate_f0(y, sr=sr)
    # Plan: the source's melody moved by whole semitones to the profile's median (auto key).
    median_target = vocal_range(enroll_track).median_hz
    shift = round(12 * np.log2(median_target / np.median(track.f0[track.voiced])))
    out = WorldEngine().convert(
        y, sr=sr, f0=track, target_f0=track.f0 * 2 ** (shift / 12), profile=_profile(feats)
    )

    encoder = load_voice_encoder("cpu")

    def embed(v: np.ndarray) -> np.ndarray:
        e = encoder.embed_utterance(preprocess_wav(v, source_sr=sr))
        return np.asarray(e / np.linalg.norm(e))

    held_out, _ = load(speaker_files(target)[8], sr=sr, mono=True)
    ref = embed(held_out)
    before, after = float(embed(y) @ ref), float(embed(out) @ ref)
    assert after > before + 0.05, (before, after)


def test_filter_with_unity_gains_gives_back_the_input() -> None:
    """The filter's STFT reconstructs exactly: no gain ripple at the frame rate (a sine window without a
    synthesis window once modulated the output by up to 3 dB at 100 Hz)."""
    from autovoice.engines.world.dsp import FFT_SIZE, apply_gains

    sr = 44_100
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(sr)).astype(np.float32)
    n = 100
    out = apply_gains(y, np.zeros((n, FFT_SIZE // 2 + 1)), t_frames=np.arange(n) * 0.01 * sr, sr=sr)
    np.testing.assert_allclose(out, y, atol=1e-5)


@pytest.mark.parametrize(
    ("engine", "params"),
    [("world", "WorldParams"), ("gmm", "GmmParams"), ("bandcopy", "BandcopyParams")],
)
def test_options_resolve_to_a_typed_model_with_every_override(engine: str, params: str) -> None:
    """Every option a caller may override is a typed field of the resolved model, set by every preset,
    and an override lands in it (one list of options, not a dictionary that could miss one)."""
    cls = get_engine(engine).params_model
    assert cls.__name__ == params
    assert set(cls.overrides.model_fields) == set(cls.model_fields)
    for preset in PRESET_OPTIONS:
        resolved = cls.resolve(preset)
        assert all(getattr(resolved, k) is not None for k in cls.model_fields)
    assert cls.resolve("fast", {"knn_k": 7}).knn_k == 7
    with pytest.raises(ParameterError) as err:
        cls.resolve("fast", {"no_such_option": 1})
    assert err.value.code == "invalid_engine_options"


def test_window_plan_covers_the_input_once() -> None:
    """The windows' cores tile the input and their crossfades sum to one: unity segments overlap-add to
    unity, whatever the window, context and rate."""
    from autovoice.engines.world.dsp import WindowPlan, n_frames

    for sr, hop_s, window_s, n_samples in [(16_000, 0.01, 1.0, 51_234), (44_100, 0.005, 1.3, 200_001)]:
        n = n_frames(n_samples, sr=sr, hop_s=hop_s)
        plan = WindowPlan.over(
            n, n_samples=n_samples, sr=sr, hop_s=hop_s, window_s=window_s, context_s=0.3, crossfade_s=0.1
        )
        assert len(plan.windows) > 2
        assert plan.windows[0].s0 == 0
        assert plan.windows[-1].s1 == n_samples
        out = np.zeros(n_samples, dtype=np.float32)
        for w in plan.windows:
            assert len(plan.frame_times(w)) == w.b - w.a
            plan.add(out, np.ones(w.s1 - w.s0, dtype=np.float32), w)
        np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_only_the_world_engine_streams() -> None:
    """Streaming is part of an engine's interface: the world engine opens a stream, the engines built on
    it (whose mapping the stream does not carry) do not claim to."""
    from autovoice.engines.base import StreamingEngine
    from autovoice.pipeline.live import streaming_engines

    assert isinstance(get_engine("world"), StreamingEngine)
    assert not isinstance(get_engine("gmm"), StreamingEngine)
    assert streaming_engines() == ["world"]
