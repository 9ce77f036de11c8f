"""The ``rvc`` engine end to end on random-weights models in RVC's file layout (v1 and v2, with an index)."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from autovoice.engines import get_engine
from autovoice.engines.checkpoints import inspect_model
from autovoice.engines.trained import windows
from autovoice.errors import AutoVoiceError
from autovoice.models.cache import CACHE
from autovoice.models.hubert import add_local
from autovoice.profiles import ModelFiles
from tests.engines.fakes import Model, write_fairseq_hubert, write_index, write_rvc
from tests.support import VOCAL_SR as SR
from tests.support import sung_vocal

pytestmark = pytest.mark.usefixtures("forget_models")


@pytest.fixture
def v1_profile(tmp_path: Path) -> Any:
    add_local("hubert_base", write_fairseq_hubert(tmp_path / "hubert_base.pt", layers=9))
    pth = write_rvc(tmp_path / "voice.pth", version="v1", sr=40000)
    index = write_index(tmp_path / "added_IVF12_Flat_nprobe_1_voice_v1.index", dim=256, n=500)
    info = inspect_model(pth, index=index)
    return SimpleNamespace(name="alice", models=[Model("m1", info, ModelFiles(pth, index=index))])


def test_rvc_v1_converts_at_the_planned_pitch_length_and_rate(v1_profile: Any) -> None:
    y, track = sung_vocal()
    engine = get_engine("rvc")
    target = track.f0 * 2 ** (2 / 12)
    out = engine.convert(y, sr=SR, f0=track, target_f0=target, profile=v1_profile)
    assert out.shape == y.shape
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= 1.0
    assert np.sqrt(np.mean(out**2)) > 1e-3
    again = engine.convert(y, sr=SR, f0=track, target_f0=target, profile=v1_profile)
    assert np.array_equal(out, again)  # same seed, same audio
    other = engine.convert(
        y, sr=SR, f0=track, target_f0=target, profile=v1_profile, options={"index_rate": 0.0}
    )
    assert not np.allclose(out, other)  # retrieval changes the features
    loaded = [k for k in CACHE.loaded() if k.startswith("rvc:")]
    assert len(loaded) == 1  # the model was built once and reused


@pytest.mark.slow
def test_rvc_v2_48k_model_runs(tmp_path: Path) -> None:
    add_local(
        "hubert_base",
        write_fairseq_hubert(tmp_path / "h.pt", hidden=768, layers=12, heads=12, ffn=32, conv=16),
    )
    pth = write_rvc(tmp_path / "v2.pth", version="v2", sr=48000)
    index = write_index(tmp_path / "v2.index", dim=768, n=400)
    profile = SimpleNamespace(
        name="bob", models=[Model("m", inspect_model(pth, index=index), ModelFiles(pth, index))]
    )
    y, track = sung_vocal(1.0)
    out = get_engine("rvc").convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile)
    assert out.shape == y.shape
    assert np.sqrt(np.mean(out**2)) > 1e-3


def test_rvc_errors(v1_profile: Any, tmp_path: Path) -> None:
    y, track = sung_vocal(0.5)
    engine = get_engine("rvc")
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(y, sr=SR, f0=track, target_f0=track.f0, profile=SimpleNamespace(name="x", models=[]))
    assert e.value.code == "model_not_found"
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(y, sr=SR, f0=track, target_f0=track.f0, profile=v1_profile, options={"index_rate": 2})
    assert e.value.code == "invalid_engine_options"
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(
            y, sr=SR, f0=track, target_f0=track.f0, profile=v1_profile, options={"speaker_id": 500}
        )
    assert e.value.code == "invalid_engine_options"
    with pytest.raises(AutoVoiceError) as e:
        engine.convert(y, sr=SR, f0=track, target_f0=track.f0[:-1], profile=v1_profile)
    assert e.value.code == "invalid_parameter"


@pytest.mark.parametrize(("added_as", "applio"), [("contentvec", False), ("hubert_base", True)])
def test_either_name_of_the_embedder_lets_a_model_convert(
    tmp_path: Path, added_as: str, applio: bool
) -> None:
    """``hubert_base`` and ``contentvec`` are the same weights: an RVC model (trained on "hubert_base") runs
    with the encoder added as ``contentvec``, an Applio one ("contentvec") with it added as ``hubert_base``,
    through the CLI's entry point (``add_user_weights``)."""
    from autovoice.engines.trained import add_user_weights

    add_user_weights(added_as, write_fairseq_hubert(tmp_path / "encoder.pt", layers=9))
    pth = write_rvc(tmp_path / "voice.pth", version="v1", sr=40000, applio=applio)
    info = inspect_model(pth)
    assert info.embedder == ("contentvec" if applio else "hubert_base") != added_as
    profile = SimpleNamespace(name="e", models=[Model("m", info, ModelFiles(pth))])
    y, track = sung_vocal(0.5)
    out = get_engine("rvc").convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile)
    assert out.shape == y.shape
    assert np.sqrt(np.mean(out**2)) > 1e-3


def test_add_user_weights_checks_with_the_right_loader(tmp_path: Path) -> None:
    """``models add rmvpe`` loads the file as RMVPE, an encoder as HuBERT: each refuses the other's file."""
    import torch

    from autovoice.analysis.rmvpe import E2E
    from autovoice.engines.trained import add_user_weights
    from autovoice.models.local import local_source

    rmvpe = tmp_path / "rmvpe.pt"
    torch.save(E2E().state_dict(), rmvpe)
    encoder = write_fairseq_hubert(tmp_path / "hubert_base.pt", layers=9)
    with pytest.raises(AutoVoiceError) as e:
        add_user_weights("rmvpe", encoder)
    assert e.value.code == "untrusted_checkpoint"  # RMVPE's reader allows no fairseq training options
    with pytest.raises(AutoVoiceError) as e:
        add_user_weights("hubert_base", rmvpe)
    assert e.value.code == "invalid_checkpoint"
    assert local_source("rmvpe") is None
    assert add_user_weights("rmvpe", rmvpe) == local_source("rmvpe")
    with pytest.raises(AutoVoiceError) as e:
        add_user_weights("wavlm", rmvpe)
    assert e.value.code == "unknown_model"


def test_missing_content_encoder_says_how_to_add_it(tmp_path: Path) -> None:
    pth = write_rvc(tmp_path / "voice.pth", version="v2")
    profile = SimpleNamespace(name="c", models=[Model("m", inspect_model(pth), ModelFiles(pth))])
    y, track = sung_vocal(0.5)
    with pytest.raises(AutoVoiceError) as e:
        get_engine("rvc").convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile)
    assert e.value.code == "model_unavailable"
    assert "autovoice models add hubert_base" in e.value.message


def test_long_inputs_are_processed_in_bounded_windows() -> None:
    ws = windows(60 * SR, sr=SR)
    assert len(ws) == 3
    assert max(w.stop - w.start for w in ws) <= 22 * SR
    assert ws[0].keep_start == 0
    assert ws[-1].keep_stop == 60 * SR
    assert all(a.keep_stop > b.keep_start for a, b in itertools.pairwise(ws))  # overlaps to crossfade


def test_output_follows_the_planned_melody(v1_profile: Any) -> None:
    """Even with random weights the NSF source sets the pitch: a fifth up comes out a fifth up."""
    from autovoice.analysis import estimate_f0

    y, track = sung_vocal()
    target = track.f0 * 1.5
    out = get_engine("rvc").convert(y, sr=SR, f0=track, target_f0=target, profile=v1_profile)
    got = estimate_f0(out, sr=SR).f0
    n = min(len(got), len(target))
    both = (got[:n] > 0) & (target[:n] > 0)
    assert both.sum() > 0.5 * (target > 0).sum()
    cents = 1200 * np.log2(got[:n][both] / target[:n][both])
    assert np.median(np.abs(cents)) < 50


def test_windowed_joins_are_seamless() -> None:
    """Identity conversion through the windows and crossfades gives the input back, sample for sample."""
    from autovoice.engines.trained import run_windowed

    x = np.random.default_rng(0).standard_normal(50 * 1000).astype(np.float32)
    seen: list[int] = []

    def identity(seg: np.ndarray, start: int) -> np.ndarray:
        seen.append(start)
        return x[start : start + len(seg)].copy()

    out = run_windowed(x, sr=1000, convert=identity, progress=lambda f, s: None)
    assert len(seen) == 3
    assert np.allclose(out, x, atol=1e-6)
