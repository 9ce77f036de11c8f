"""The ``gmm`` engine: its profile features, the class map, equality with ``world`` when the map is
off, outdated and malformed profiles, and the speaker moving on real speech."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from autovoice.analysis import F0Track, estimate_f0
from autovoice.audio import load
from autovoice.engines import ENGINES, get_engine
from autovoice.engines.gmm import (
    FEATURE_VERSION,
    N_CLASSES,
    ClassMapper,
    GmmEngine,
    GmmParams,
    PhoneticClasses,
    Q,
)
from autovoice.engines.world.dsp import N_CEP
from autovoice.engines.world.engine import WorldEngine
from autovoice.engines.world.mapping import VoiceStats
from autovoice.errors import ParameterError
from autovoice.profiles.profile import VoiceProfile
from tests.support import (
    FEMALE,
    MALE,
    engine_profile,
    known_track,
    melody,
    speaker_files,
    voice_like,
    voicing,
)

SR = 16_000


def _features(y: np.ndarray, track: F0Track) -> dict[str, np.ndarray]:
    world = WorldEngine().profile_features(y, sr=SR, f0=track)
    gmm = GmmEngine().profile_features(y, sr=SR, f0=track)
    return {**{f"world.{k}": v for k, v in world.items()}, **{f"gmm.{k}": v for k, v in gmm.items()}}


@pytest.fixture(scope="module")
def tone() -> tuple[np.ndarray, F0Track, VoiceProfile]:
    f = melody(6.0, sr=SR, notes=(190.0, 210.0, 230.0), vibrato=0.01)
    y = voice_like(f, sr=SR, seed=1)
    track = known_track(f, sr=SR, voiced=voicing(len(y), sr=SR))
    return y, track, engine_profile(_features(y, track))


def test_registered_with_its_options() -> None:
    choice = ENGINES.get("gmm")
    assert isinstance(get_engine("gmm"), GmmEngine)
    assert "class_weight" in choice.describe()["options"]["properties"]


def test_profile_features(tone: tuple[np.ndarray, F0Track, VoiceProfile]) -> None:
    feats = tone[2].features
    k = feats["gmm.weights"].shape[0]
    assert 1 <= k <= N_CLASSES
    assert feats["gmm.means"].shape == feats["gmm.variances"].shape == (k, Q)
    assert feats["gmm.class_means"].shape == (k, N_CEP)
    assert int(feats["gmm.version"][0]) == FEATURE_VERSION
    assert np.isclose(feats["gmm.weights"].sum(), 1.0, atol=1e-4)
    assert (feats["gmm.variances"] > 0).all()
    # Features are a deterministic function of the audio.
    again = GmmEngine().profile_features(tone[0], sr=SR, f0=tone[1])
    assert np.array_equal(again["means"], feats["gmm.means"])


def test_class_map_off_is_the_world_engine(tone: tuple[np.ndarray, F0Track, VoiceProfile]) -> None:
    """With the class shift at 0 and no correction, the gmm engine is the world engine without k-NN."""
    f = melody(3.0, sr=SR, notes=(150.0, 170.0), vibrato=0.02)
    y = voice_like(f, sr=SR, seed=2)
    track = known_track(f, sr=SR, voiced=voicing(len(y), sr=SR))
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": track.f0 * 1.2, "profile": tone[2]}
    off = GmmEngine(options={"class_weight": 0.0, "correct": 0}).convert(y, **kw)
    world = WorldEngine(options={"knn_k": 0, "knn_weight": 0.0}).convert(y, **kw)
    assert np.array_equal(off, world)
    on = GmmEngine().convert(y, **kw)
    assert on.shape == y.shape
    assert np.all(np.isfinite(on))
    assert np.abs(on).max() <= 1.0
    assert not np.allclose(on, world, atol=1e-3)  # the map and the correction do something


def test_class_mapper_moves_each_class_by_its_mean_difference() -> None:
    """Two well-separated classes: a source frame of class j moves by (target mean j - source mean j),
    shrunk by the source's frame count of that class."""
    rng = np.random.default_rng(0)
    means = np.zeros((2, Q))
    means[0, 0], means[1, 0] = -3.0, 3.0  # classes differ on c1
    target_class = np.zeros((2, N_CEP))
    target_class[0, 5], target_class[1, 5] = 1.0, -1.0  # the target puts them apart on c5
    classes = PhoneticClasses(np.array([0.5, 0.5]), means, np.full((2, Q), 0.2), target_class)
    frames = np.zeros((400, N_CEP))
    frames[:200, 1], frames[200:, 1] = -3.0, 3.0
    frames[:, 1:] += 0.1 * rng.standard_normal((400, N_CEP - 1))
    stats = VoiceStats(np.zeros(N_CEP), np.ones(N_CEP), np.zeros(N_CEP), np.ones(N_CEP), knn=frames)
    source = VoiceStats(np.zeros(N_CEP), np.ones(N_CEP), np.zeros(N_CEP), np.ones(N_CEP), frames_v=frames)
    params = GmmParams.resolve("balanced", {"n_cep": N_CEP, "class_smooth_ms": 0.0})
    mapper = ClassMapper(stats, source, classes=classes, warp=1.0, params=params, hop_s=0.01)
    moved = mapper.refine(frames[[0, 300]]) - frames[[0, 300]]
    trust = 200 / 220
    assert moved[0, 5] == pytest.approx(trust * (1.0 - frames[:200, 5].mean()), abs=1e-6)
    assert moved[1, 5] == pytest.approx(trust * (-1.0 - frames[200:, 5].mean()), abs=1e-6)
    assert np.all(moved[:, 0] == 0)  # the level is never moved


def test_outdated_and_malformed_profiles(tone: tuple[np.ndarray, F0Track, VoiceProfile]) -> None:
    y, track, profile = tone
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": track.f0}
    world_only = engine_profile(
        {k: v for k, v in profile.features.items() if k.startswith("world.")}, name="old"
    )
    with pytest.raises(ParameterError) as err:
        GmmEngine().convert(y, profile=world_only, **kw)
    assert err.value.code == "profile_outdated"
    assert err.value.details["rebuild"] == "autovoice profile create 'old' FILE..."
    stale = engine_profile({**profile.features, "gmm.version": np.array([FEATURE_VERSION + 1], np.int32)})
    with pytest.raises(ParameterError) as err:
        GmmEngine().convert(y, profile=stale, **kw)
    assert err.value.code == "profile_outdated"
    broken = engine_profile({**profile.features, "gmm.variances": -profile.features["gmm.variances"]})
    with pytest.raises(ParameterError) as err:
        GmmEngine().convert(y, profile=broken, **kw)
    assert err.value.code == "profile_incompatible"
    with pytest.raises(ParameterError) as err:
        GmmEngine(options={"class_weight": 5.0})
    assert err.value.code == "invalid_engine_options"


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_speech_moves_toward_the_target(speech_dir: Any) -> None:
    """A male utterance converted toward a female profile ends nearer to her than the world engine's
    global map alone (no k-NN) takes it, measured on the envelope the gmm engine does not see at
    build time: the output's mean voiced cepstrum."""
    from autovoice.engines.world.dsp import analyse, encode, n_frames, to_internal

    tgt = np.concatenate([load(f, sr=SR, mono=True)[0] for f in speaker_files(FEMALE[1])[:3]])
    profile = engine_profile(_features(tgt, estimate_f0(tgt, sr=SR)))
    y = load(speaker_files(MALE[0])[6], sr=SR, mono=True)[0][: 6 * SR]
    track = estimate_f0(y, sr=SR)
    plan = track.f0 * 2.0 ** (12 / 12)
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": plan, "profile": profile}

    def distance(out: np.ndarray) -> float:
        n = min(len(plan), n_frames(len(out), sr=SR, hop_s=track.hop_s))
        frames = np.flatnonzero(plan[:n] > 0)
        x16 = to_internal(out, sr=SR)
        mcep = encode(np.log(analyse(x16, plan[frames], frames, hop_s=track.hop_s)), warp=1.0)
        return float(np.linalg.norm((mcep.mean(0) - profile.features["world.mcep_mean_v"])[1:30]))

    moved = distance(GmmEngine().convert(y, **kw))
    global_map = distance(WorldEngine(options={"knn_k": 0, "knn_weight": 0.0}).convert(y, **kw))
    assert moved < 0.8 * global_map


def test_correction_in_windows_equals_one_window(tone: tuple[np.ndarray, F0Track, VoiceProfile]) -> None:
    """The closed-loop correction filters long audio in windows (bounded memory); away from float noise
    the result is the one-window result."""
    from autovoice.engines.gmm import correct_envelope

    f = melody(9.0, sr=SR, notes=(150.0, 180.0, 165.0), vibrato=0.02)
    y = 0.5 * voice_like(f, sr=SR, seed=3)
    track = known_track(f, sr=SR, voiced=voicing(len(y), sr=SR))
    kw: dict[str, Any] = {"sr": SR, "target_f0": track.f0, "hop_s": track.hop_s, "profile": tone[2]}
    windows = correct_envelope(y, params=GmmParams.resolve("balanced", {"window_s": 2.0}), **kw)
    whole = correct_envelope(y, params=GmmParams.resolve("balanced", {"window_s": 60.0}), **kw)
    assert windows.shape == whole.shape == y.shape
    assert not np.allclose(whole, y, atol=1e-3)  # the correction does something here
    np.testing.assert_allclose(windows, whole, atol=2e-3)
