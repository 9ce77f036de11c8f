"""Source separation: the method registry, the demucs path with a tiny real HTDemucs, pass-through, errors.

The real ``htdemucs`` weights (84 MB) are never downloaded here. Instead a tiny, randomly initialised
model of the same class is saved the way demucs publishes its checkpoints and loaded through the real
path (registry -> hash check -> ``torch.load(weights_only=True)`` -> ``demucs.states.load_model`` ->
``demucs.apply.apply_model``). Random weights give no known answer, so a second model with fixed
per-source gains checks the plumbing (resampling, channels, blocks, cross-fades) exactly.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

from autovoice.config import Settings
from autovoice.errors import AudioError, ModelUnavailableError, ParameterError
from autovoice.models.cache import CACHE
from autovoice.models.weights import REGISTRY, WeightsSpec, weights_path
from autovoice.separation import (
    SEPARATION_METHODS,
    SEPARATORS,
    Separation,
    SeparationChoice,
    Stems,
    demucs_backend,
    resolve_method,
    separate,
)

SOURCES = ["drums", "bass", "other", "vocals"]
SR = 44_100


@pytest.fixture(autouse=True)
def fresh_model_cache() -> Iterator[None]:
    """Each test loads its own model: the process-wide cache must not leak one test's weights."""
    CACHE.clear()
    yield
    CACHE.clear()


def tiny_package_bytes(seed: int = 0) -> bytes:
    """A small HTDemucs saved as a demucs package (``demucs.states.serialize_model`` layout)."""
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    torch.manual_seed(seed)
    # 1 s segments (htdemucs: 7.8 s) and 4 channels (48) keep one forward pass under 0.1 s on a CPU.
    model = HTDemucs(
        sources=SOURCES,
        audio_channels=2,
        samplerate=SR,
        segment=Fraction(1),
        channels=4,
        depth=4,
        t_layers=1,
        t_heads=1,
        dconv_comp=4,
    )
    args, kwargs = model._init_args_kwargs
    # serialize_model() also stores OmegaConf training args; omegaconf is a training-only dependency,
    # so the same dict is built here with a plain training_args.
    package = {
        "klass": HTDemucs,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=True),
        # Real training configs can hold numpy scalars; the safe loader must accept them.
        "training_args": {"model": "htdemucs", "seed": np.int64(seed), "lr": np.float32(3e-4)},
    }
    buf = io.BytesIO()
    torch.save(package, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny_bytes() -> bytes:
    return tiny_package_bytes()


@pytest.fixture
def tiny_htdemucs(monkeypatch: pytest.MonkeyPatch, settings: Settings, tiny_bytes: bytes) -> Path:
    """The tiny model installed in the cache as the registry's htdemucs file, with a matching entry."""
    real = REGISTRY["htdemucs"]
    monkeypatch.setitem(
        REGISTRY,
        "htdemucs",
        WeightsSpec(
            name=real.name,
            version="test",
            url="https://example.invalid/never-fetched.th",
            sha256=hashlib.sha256(tiny_bytes).hexdigest(),
            size_bytes=len(tiny_bytes),
            license=real.license,
            filename=real.filename,
        ),
    )
    path = weights_path("htdemucs", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(tiny_bytes)
    return path


class GainModel(torch.nn.Module):
    """A demucs-shaped model whose sources are fixed fractions of the mix: a known answer."""

    gains = (0.1, 0.2, 0.3, 0.4)  # drums, bass, other, vocals

    def __init__(self) -> None:
        super().__init__()
        self.samplerate = SR
        self.audio_channels = 2
        self.sources = list(SOURCES)
        self.segment = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([g * x for g in self.gains], dim=1)


def song(seconds: float, *, sr: int, channels: int) -> np.ndarray:
    """A two-tone 'mix' with different content per channel."""
    t = np.arange(int(seconds * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1500 * t)
    right = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sign(np.sin(2 * np.pi * 3 * t))
    y = np.stack([left, right])[:channels].astype(np.float32)
    return y[0] if channels == 1 else y


# --- none / errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_none_passes_the_vocal_through(channels: int) -> None:
    y = song(1.0, sr=16_000, channels=channels)
    stems = separate(y, sr=16_000, method="none")
    choice = SeparationChoice(asked="none", used="none")
    assert stems == Stems(vocals=stems.vocals, accompaniment=None, sr=16_000, method="none", choice=choice)
    np.testing.assert_array_equal(stems.vocals, y)
    assert stems.vocals.dtype == np.float32


def test_registry_matches_the_type() -> None:
    assert SEPARATION_METHODS == get_args(Separation) == ("auto", "demucs", "spleeter", "none")
    assert SEPARATORS.names == SEPARATION_METHODS
    assert all(choice.description for choice in SEPARATORS)
    assert [c.name for c in SEPARATORS if c.target] == ["demucs", "spleeter"]


@pytest.mark.parametrize("method", ["bogus", "Spleeter", ""])
def test_unknown_method_lists_valid_ones(method: str) -> None:
    with pytest.raises(ParameterError) as info:
        separate(song(1.0, sr=SR, channels=2), sr=SR, method=method)  # type: ignore[arg-type]
    assert info.value.code == "invalid_separation"
    assert info.value.details["valid"] == list(SEPARATION_METHODS)
    for name in SEPARATION_METHODS:
        assert name in info.value.message
    assert "--" not in info.value.message  # messages name fields, never CLI flags


@pytest.mark.parametrize(
    ("y", "sr", "code"),
    [
        (np.zeros((1, 2, 100), np.float32), SR, "invalid_audio_shape"),
        (np.zeros(0, np.float32), SR, "audio_empty"),
        (np.array([0.0, np.nan, 0.1], np.float32), SR, "audio_invalid_samples"),
        (np.zeros(100, np.int16), SR, "invalid_audio_shape"),
        (np.zeros(100, np.float32), 0, "invalid_parameter"),
        (np.zeros(100, np.float32), 44_100.0, "invalid_parameter"),
    ],
    ids=["3d", "empty", "nan", "int16", "sr0", "sr-float"],
)
def test_bad_input_codes(y: np.ndarray, sr: int, code: str) -> None:
    with pytest.raises((AudioError, ParameterError)) as info:
        separate(y, sr=sr, method="none")
    assert info.value.code == code


@pytest.mark.parametrize("allow_downloads", [False, True], ids=["offline", "downloads-allowed"])
def test_auto_without_demucs_weights_runs_spleeter(settings: Settings, allow_downloads: bool) -> None:
    s = settings.model_copy(update={"allow_downloads": allow_downloads})
    assert resolve_method("auto", settings=s) == "spleeter"
    y = song(1.0, sr=SR, channels=2)
    stems = separate(y, sr=SR, method="auto", settings=s)
    assert stems.method == "spleeter"  # steady tones: not a voice alone (no pauses)
    assert stems.choice is not None
    assert stems.choice.check is not None
    assert not stems.choice.check.alone
    assert stems.accompaniment is not None
    assert stems.vocals.shape == stems.accompaniment.shape == y.shape
    assert not weights_path("htdemucs", s).exists()  # auto never downloads demucs


def test_demucs_without_weights_is_model_unavailable(settings: Settings) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        separate(song(1.0, sr=SR, channels=2), sr=SR, method="demucs", settings=settings)
    assert info.value.code == "model_unavailable"
    assert "autovoice models download htdemucs" in info.value.message


def test_too_many_channels_for_the_model() -> None:
    with pytest.raises(AudioError) as info:
        separate(np.zeros((3, SR), np.float32), sr=SR, method="demucs", model=GainModel())
    assert info.value.code == "too_many_channels"


# --- the real demucs path with a tiny HTDemucs ---------------------------------------------------


def test_demucs_stereo_44k(tiny_htdemucs: Path, settings: Settings) -> None:
    y = song(1.2, sr=SR, channels=2)  # two 1 s model segments
    seen: list[float] = []
    stems = separate(y, sr=SR, method="demucs", settings=settings, progress=lambda f, s: seen.append(f))
    assert stems.method == "demucs"
    assert stems.sr == SR
    assert stems.accompaniment is not None
    for stem in (stems.vocals, stems.accompaniment):
        assert stem.shape == y.shape
        assert stem.dtype == np.float32
        assert np.isfinite(stem).all()
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert min(seen) >= 0.0
    assert CACHE.loaded() == ["demucs:htdemucs@cpu"]


def test_demucs_mono_48k_keeps_layout_and_length(tiny_htdemucs: Path, settings: Settings) -> None:
    y = song(0.8, sr=48_000, channels=1)[:38_401]  # an odd length that does not resample evenly
    stems = separate(y, sr=48_000, method="demucs", settings=settings)
    assert stems.sr == 48_000
    assert stems.accompaniment is not None
    assert stems.vocals.shape == stems.accompaniment.shape == y.shape
    assert np.isfinite(stems.vocals).all()
    assert np.isfinite(stems.accompaniment).all()


def test_auto_uses_local_weights_and_loads_once(
    tiny_htdemucs: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []
    real = demucs_backend.load_checkpoint

    def counting(path: Path, *, check_name: bool = True) -> torch.nn.Module:
        loads.append(Path(path))
        return real(path, check_name=check_name)

    monkeypatch.setattr(demucs_backend, "load_checkpoint", counting)
    y = song(0.5, sr=22_050, channels=2)
    first = separate(y, sr=22_050, method="auto", settings=settings)
    second = separate(y, sr=22_050, method="auto", settings=settings)
    assert resolve_method("auto", settings=settings) == "demucs"
    assert first.method == second.method == "demucs"
    assert loads == [tiny_htdemucs]
    np.testing.assert_array_equal(first.vocals, second.vocals)  # shifts=0: deterministic


def test_corrupt_cached_weights_are_not_loaded(tiny_htdemucs: Path, settings: Settings) -> None:
    data = bytearray(tiny_htdemucs.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tiny_htdemucs.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError) as info:
        separate(song(1.0, sr=SR, channels=2), sr=SR, method="demucs", settings=settings)
    assert info.value.code == "weights_corrupt"
    assert CACHE.loaded() == []


def test_model_argument_path_with_demucs_style_name(tmp_path: Path, tiny_bytes: bytes) -> None:
    good = tmp_path / f"0123abcd-{hashlib.sha256(tiny_bytes).hexdigest()[:8]}.th"
    good.write_bytes(tiny_bytes)
    y = song(0.5, sr=SR, channels=2)
    stems = separate(y, sr=SR, method="demucs", model=good)
    assert stems.vocals.shape == y.shape

    bad = tmp_path / "0123abcd-00000000.th"
    bad.write_bytes(tiny_bytes)
    with pytest.raises(ModelUnavailableError) as info:
        separate(y, sr=SR, method="demucs", model=bad)
    assert info.value.code == "weights_corrupt"


class _Payload:
    """Unpickling this would create a file: proof of code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def test_checkpoint_with_foreign_objects_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.th"
    path.write_bytes(
        pickle.dumps({"klass": _Payload(marker), "args": [], "kwargs": {}, "state": {}}, protocol=2)
    )
    with pytest.raises(ModelUnavailableError) as info:
        separate(song(1.0, sr=SR, channels=2), sr=SR, method="demucs", model=path)
    assert info.value.code == "weights_unsupported"
    assert not marker.exists()


def test_loaded_model_object_is_accepted(tiny_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "tiny.th"
    path.write_bytes(tiny_bytes)
    model = demucs_backend.load_checkpoint(path)
    stems = separate(song(0.5, sr=SR, channels=1), sr=SR, method="demucs", model=model)
    assert stems.vocals.ndim == 1
    assert np.isfinite(stems.vocals).all()


# --- known answers through apply_model: blocks, cross-fades, resampling, channels ----------------


def test_gain_model_known_answer_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demucs_backend, "BLOCK_SECONDS", 2.0)
    monkeypatch.setattr(demucs_backend, "CROSSFADE_SECONDS", 0.25)
    y = song(7.3, sr=SR, channels=2)  # 4 blocks, the last one short
    stems = separate(y, sr=SR, method="demucs", model=GainModel())
    assert stems.accompaniment is not None
    np.testing.assert_allclose(stems.vocals, 0.4 * y, atol=1e-5)
    np.testing.assert_allclose(stems.accompaniment, 0.6 * y, atol=1e-5)


def test_gain_model_known_answer_mono_resampled() -> None:
    sr = 16_000
    y = song(3.0, sr=sr, channels=1)
    stems = separate(y, sr=sr, method="demucs", model=GainModel())
    assert stems.accompaniment is not None
    assert stems.vocals.shape == stems.accompaniment.shape == y.shape
    inner = slice(sr // 10, -sr // 10)  # resampling filters ring at the very edges
    np.testing.assert_allclose(stems.vocals[inner], 0.4 * y[inner], atol=2e-3)
    np.testing.assert_allclose(stems.accompaniment[inner], 0.6 * y[inner], atol=2e-3)


def test_accompaniment_level_relative_to_the_vocals() -> None:
    """Known answer: an accompaniment at a tenth of the vocal's amplitude is 20 dB below it."""
    vocals = song(1.0, sr=SR, channels=2)
    stems = Stems(vocals=vocals, accompaniment=0.1 * vocals, sr=SR, method="spleeter")
    assert stems.accompaniment_db == pytest.approx(-20.0, abs=1e-6)
    assert Stems(vocals=vocals, accompaniment=None, sr=SR).accompaniment_db is None
