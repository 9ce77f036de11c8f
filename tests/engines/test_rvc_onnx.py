"""The rvc engine's synthesizer on ONNX Runtime: parity with PyTorch, the export cache, the fallbacks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from autovoice.config import Settings, get_settings
from autovoice.engines import get_engine
from autovoice.engines.checkpoints import inspect_model
from autovoice.engines.rvc.model import build_rvc, f0_coarse
from autovoice.errors import AutoVoiceError
from autovoice.models.hubert import add_local
from autovoice.models.safe_load import load_checkpoint
from autovoice.profiles import ModelFiles
from tests.engines.fakes import Model, write_fairseq_hubert, write_rvc
from tests.support import VOCAL_SR as SR
from tests.support import sung_vocal

pytest.importorskip("onnx", reason="the ONNX path exports with the 'onnx' package (`make install`)")
pytest.importorskip("onnxruntime")

from autovoice.engines.rvc.onnx_decoder import (
    EXPORT_FRAMES,
    MIN_FRAMES,
    decoder_path,
    load_onnx_decoder,
)

pytestmark = pytest.mark.usefixtures("forget_models")

PARITY = 1e-3


def _inputs(net: Any, frames: int, *, seed: int = 3) -> dict[str, Any]:
    """Content features, a gliding F0 with an unvoiced gap, and the draws, for ``frames`` frames."""
    gen = torch.Generator().manual_seed(seed)
    t = np.arange(frames)
    f0 = (220.0 * 2 ** (0.5 * np.sin(t / 30.0))).astype(np.float32)
    f0[(t % 90) < 10] = 0.0
    dim = net.enc_p.emb_phone.in_features
    return {
        "phone": torch.randn(1, frames, dim, generator=gen),
        "pitch": torch.from_numpy(f0_coarse(f0))[None] if net.f0 else None,
        "nsff0": torch.from_numpy(f0)[None] if net.f0 else None,
        "sid": torch.tensor([1]),
        "prior_noise": torch.randn(1, net.enc_p.out_channels, frames, generator=gen),
        "phase": torch.rand(1, 1, generator=gen),
        "source_noise": torch.randn(1, frames * net.hop_length, 1, generator=gen),
    }


def _both(net: Any, onnx: Any, frames: int) -> tuple[np.ndarray, np.ndarray]:
    x = _inputs(net, frames)
    args = (x.pop("phone"), x.pop("pitch"), x.pop("nsff0"), x.pop("sid"))
    with torch.no_grad():
        ref = net.infer(*args, **x).numpy()
    return ref, onnx.infer(*args, **x).numpy()


@pytest.mark.parametrize(
    ("version", "sr", "f0"), [("v2", 48000, True), ("v1", 40000, True), ("v2", 40000, False)]
)
def test_onnx_synthesizer_matches_pytorch(tmp_path: Path, version: str, sr: int, f0: bool) -> None:
    """Within 1e-3 at lengths other than the one the graph was traced with (its frames axis is dynamic)."""
    pth = write_rvc(tmp_path / "m.pth", version=version, sr=sr, f0=f0, seed=5)
    net = build_rvc(load_checkpoint(pth), name=pth.name)
    onnx = load_onnx_decoder(net, pth, settings=Settings(data_dir=tmp_path / "data"))
    assert onnx.exported
    for frames in (MIN_FRAMES, 157, 2 * EXPORT_FRAMES + 31):
        ref, out = _both(net, onnx, frames)
        assert out.shape == ref.shape == (1, 1, frames * net.hop_length)
        assert np.sqrt(np.mean(ref**2)) > 1e-3  # a real signal, not two silences
        assert float(np.max(np.abs(out - ref))) <= PARITY, frames


def test_graph_is_exported_once_per_checkpoint_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    pth = write_rvc(tmp_path / "a.pth", version="v2", sr=48000)
    net = build_rvc(load_checkpoint(pth), name=pth.name)
    first = load_onnx_decoder(net, pth, settings=settings)
    path = decoder_path(pth, settings=settings)
    assert first.exported
    assert first.path == path
    assert path.parent == settings.model_cache_dir / "onnx"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    stamp = path.stat().st_mtime_ns
    second = load_onnx_decoder(net, pth, settings=settings)
    assert not second.exported
    assert path.stat().st_mtime_ns == stamp
    ref, out = _both(net, second, 120)
    assert float(np.max(np.abs(out - ref))) <= PARITY
    other = write_rvc(tmp_path / "b.pth", version="v2", sr=48000, seed=1)
    assert decoder_path(other, settings=settings) != path  # keyed by the checkpoint's content


@pytest.fixture
def v2_profile(tmp_path: Path) -> Any:
    add_local(
        "hubert_base",
        write_fairseq_hubert(tmp_path / "h.pt", hidden=768, layers=12, heads=12, ffn=32, conv=16),
    )
    pth = write_rvc(tmp_path / "v2.pth", version="v2", sr=48000)
    return SimpleNamespace(name="bob", models=[Model("m", inspect_model(pth), ModelFiles(pth))])


def test_engine_renders_with_onnx_runtime_on_the_cpu(
    v2_profile: Any, caplog: pytest.LogCaptureFixture
) -> None:
    y, track = sung_vocal(1.2)
    engine = get_engine("rvc")
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": track.f0, "profile": v2_profile}
    with caplog.at_level(logging.INFO, logger="autovoice.engines.rvc.onnx_decoder"):
        auto = engine.convert(y, **kw)
    assert any("exported" in r.getMessage() for r in caplog.records)
    cached = list((get_settings().model_cache_dir / "onnx").glob("rvc-*.onnx"))
    assert len(cached) == 1  # "auto" on the CPU took the ONNX path
    torch_out = engine.convert(y, **kw, options={"decoder": "torch"})
    onnx_out = engine.convert(y, **kw, options={"decoder": "onnx"})
    assert np.array_equal(auto, onnx_out)
    assert not np.array_equal(auto, torch_out)  # two runtimes really ran...
    assert float(np.max(np.abs(auto - torch_out))) <= PARITY  # ...and agree
    assert np.sqrt(np.mean(auto**2)) > 1e-3


def test_a_failed_export_falls_back_to_pytorch_with_one_warning(
    v2_profile: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A file where the graphs' folder should be: the export cannot be written; PyTorch renders, and the
    log says so once."""
    blocker = get_settings().model_cache_dir / "onnx"
    blocker.write_bytes(b"")
    engine = get_engine("rvc")
    y, track = sung_vocal(0.8)
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": track.f0, "profile": v2_profile}
    with caplog.at_level(logging.WARNING, logger="autovoice.engines.rvc.onnx_decoder"):
        first = engine.convert(y, **kw)
        second = engine.convert(y, **kw, options={"decoder": "onnx"})
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert "rendering with PyTorch" in warned[0].getMessage()
    torch_out = engine.convert(y, **kw, options={"decoder": "torch"})
    assert np.array_equal(first, torch_out)
    assert np.array_equal(second, torch_out)


def test_onnx_without_the_packages_says_how_to_install(
    v2_profile: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, track = sung_vocal(0.8)
    kw: dict[str, Any] = {"sr": SR, "f0": track, "target_f0": track.f0, "profile": v2_profile}
    engine = get_engine("rvc")
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError, as when absent
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(y, **kw, options={"decoder": "onnx"})
    assert e.value.code == "model_unavailable"
    assert "make install" in e.value.message
    assert e.value.details == {"package": "onnx", "option": "decoder"}
    out = engine.convert(y, **kw)  # "auto" renders with PyTorch instead, without a word
    assert np.array_equal(out, engine.convert(y, **kw, options={"decoder": "torch"}))
    assert not (get_settings().model_cache_dir / "onnx").exists()


def test_onnx_is_cpu_only_and_the_option_is_checked(v2_profile: Any) -> None:
    from autovoice.engines.rvc.engine import LoadedRvc

    model = v2_profile.models[0]
    loaded = LoadedRvc(model.info, model.files, "cpu")
    gpu = get_engine("rvc", device="cuda:0")
    with pytest.raises(AutoVoiceError) as e:
        gpu.use_onnx("onnx")  # type: ignore[attr-defined]
    assert e.value.code == "invalid_engine_options"
    assert gpu.synthesizer(loaded, gpu.use_onnx("auto")) is loaded.net  # type: ignore[attr-defined]
    with pytest.raises(AutoVoiceError) as e:
        get_engine("rvc", options={"decoder": "tensorrt"})
    assert e.value.code == "invalid_engine_options"
