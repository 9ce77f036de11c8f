"""The ``sovits`` engine end to end on random-weights so-vits-svc 4.0/4.1 models (G_*.pth + config.json)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autovoice.engines import get_engine
from autovoice.engines.checkpoints import inspect_model
from autovoice.engines.sovits.engine import interpolate_unvoiced
from autovoice.errors import AutoVoiceError
from autovoice.models.hubert import add_local
from autovoice.profiles import ModelFiles
from tests.engines.fakes import Model, write_fairseq_hubert, write_sovits
from tests.support import VOCAL_SR as SR
from tests.support import sung_vocal

pytestmark = pytest.mark.usefixtures("forget_models")


def _kmeans(path: Path, dim: int, speakers: tuple[str, ...]) -> Path:
    """so-vits-svc's cluster file as its ``train_cluster.py`` writes it (sklearn's numpy centres)."""
    rng = np.random.default_rng(0)
    centres = {s: rng.standard_normal((10, dim)).astype(np.float32) for s in speakers}
    torch.save(
        {s: {"n_features_in_": dim, "_n_threads": 4, "cluster_centers_": c} for s, c in centres.items()}, path
    )
    return path


def test_sovits_40_converts_with_speaker_noise_scale_and_cluster(tmp_path: Path) -> None:
    add_local("contentvec", write_fairseq_hubert(tmp_path / "checkpoint_best_legacy_500.pt", layers=9))
    pth, config = write_sovits(tmp_path / "m", version="4.0", speakers=("alice", "bob"))
    cluster = _kmeans(tmp_path / "kmeans_10000.pt", 256, ("alice", "bob"))
    info = inspect_model(pth, config=config, cluster=cluster)
    assert info.cluster == "kmeans"
    profile = SimpleNamespace(
        name="a", models=[Model("s", info, ModelFiles(pth, config=config, cluster=cluster))]
    )
    y, track = sung_vocal(0.6)
    engine = get_engine("sovits")
    out = engine.convert(y, sr=SR, f0=track, target_f0=track.f0 * 0.5, profile=profile)
    assert out.shape == y.shape
    assert np.all(np.isfinite(out))
    assert np.sqrt(np.mean(out**2)) > 1e-3
    bob = engine.convert(
        y, sr=SR, f0=track, target_f0=track.f0 * 0.5, profile=profile, options={"speaker": "bob"}
    )
    assert not np.allclose(out, bob)
    clustered = engine.convert(
        y, sr=SR, f0=track, target_f0=track.f0 * 0.5, profile=profile, options={"cluster_ratio": 0.5}
    )
    assert not np.allclose(out, clustered)
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile, options={"speaker": "carol"})
    assert e.value.code == "invalid_engine_options"


@pytest.mark.slow
def test_sovits_41_converts(tmp_path: Path) -> None:
    add_local("contentvec", write_fairseq_hubert(tmp_path / "h.pt", hidden=768, layers=12, heads=12, ffn=32))
    pth, config = write_sovits(tmp_path / "m", version="4.1")
    profile = SimpleNamespace(
        name="b", models=[Model("s", inspect_model(pth, config=config), ModelFiles(pth, config=config))]
    )
    y, track = sung_vocal(1.0)
    out = get_engine("sovits").convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile)
    assert out.shape == y.shape
    assert np.sqrt(np.mean(out**2)) > 1e-3
    with pytest.raises(AutoVoiceError) as e:
        get_engine("sovits").convert(
            y, sr=SR, f0=track, target_f0=track.f0, profile=profile, options={"cluster_ratio": 0.5}
        )
    assert e.value.code == "invalid_engine_options"


def test_unvoiced_frames_are_interpolated_as_sovits_does() -> None:
    f0 = np.array([0, 100, 0, 0, 130, 0.0])
    assert np.allclose(interpolate_unvoiced(f0), [100, 100, 110, 120, 130, 130])
