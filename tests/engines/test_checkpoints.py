"""Trained-model files: safe loading, inspection, and a clear error for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from autovoice.engines.checkpoints import inspect_model
from autovoice.errors import AutoVoiceError
from autovoice.models.safe_load import load_checkpoint
from autovoice.profiles import TrainedModelInfo
from tests.engines.fakes import write_evil_checkpoint, write_index, write_rvc, write_sovits


def _code(exc: pytest.ExceptionInfo[AutoVoiceError]) -> str:
    return exc.value.code


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    evil = write_evil_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(evil)
    assert _code(e) == "untrusted_checkpoint"
    assert e.value.http_status == 422
    assert e.value.caller_error
    assert not marker.exists()
    # the file really is dangerous: an unrestricted load runs it
    torch.load(evil, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("version", "sr", "applio", "variant", "dim", "hop", "embedder"),
    [
        ("v2", 48000, False, "rvc-v2", 768, 480, "hubert_base"),
        ("v1", 40000, False, "rvc-v1", 256, 400, "hubert_base"),
        ("v2", 40000, True, "applio-v2", 768, 400, "contentvec"),
    ],
)
def test_rvc_models_are_described(
    tmp_path: Path, version: str, sr: int, applio: bool, variant: str, dim: int, hop: int, embedder: str
) -> None:
    pth = write_rvc(tmp_path / "m.pth", version=version, sr=sr, applio=applio)
    index = write_index(tmp_path / "added.index", dim=dim, n=500)
    info = inspect_model(pth, index=index)
    assert (info.kind, info.variant, info.sample_rate, info.f0) == ("rvc", variant, sr, True)
    assert (info.content_dim, info.hop_length, info.embedder, info.speakers) == (dim, hop, embedder, 109)
    assert (info.index_dim, info.index_size) == (dim, 500)
    back = TrainedModelInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert back == info


def test_sovits_models_are_described(tmp_path: Path) -> None:
    pth, config = write_sovits(tmp_path / "m", version="4.1", speakers=("alice", "bob"))
    info = inspect_model(pth, config=config)
    assert (info.kind, info.variant, info.sample_rate, info.hop_length) == (
        "sovits",
        "sovits-4.1",
        44100,
        512,
    )
    assert (info.embedder, info.embedder_layer, info.final_proj, info.content_dim) == (
        "contentvec",
        12,
        False,
        768,
    )
    assert info.speaker_names == ("alice", "bob")
    pth4, config4 = write_sovits(tmp_path / "m4", version="4.0")
    assert inspect_model(pth4, config=config4).variant == "sovits-4.0"


def test_bad_files_have_clear_codes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint" * 100)
    good = write_rvc(tmp_path / "m.pth")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, other)
    cases = {junk: "invalid_checkpoint", truncated: "invalid_checkpoint", other: "invalid_checkpoint"}
    for path, code in cases.items():
        with pytest.raises(AutoVoiceError) as e:
            inspect_model(path)
        assert _code(e) == code, path.name
    with pytest.raises(AutoVoiceError) as e:
        load_checkpoint(good, max_bytes=1000)
    assert _code(e) == "file_too_large"
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(tmp_path / "missing.pth")
    assert _code(e) == "file_not_found"


def test_sovits_needs_its_config_and_the_config_must_match(tmp_path: Path) -> None:
    pth, config = write_sovits(tmp_path / "m")
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(pth)
    assert _code(e) == "model_config_required"
    cfg = json.loads(config.read_text())
    for change in (
        {"hidden_channels": 24},
        {"n_speakers": 9},
        {"ssl_dim": 256, "speech_encoder": "vec256l9"},
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**cfg, "model": {**cfg["model"], **change}}))
        with pytest.raises(AutoVoiceError) as e:
            inspect_model(pth, config=bad)
        assert _code(e) == "model_config_mismatch", change
    bad.write_text("{not json")
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(pth, config=bad)
    assert _code(e) == "invalid_model_config"
    bad.write_text(json.dumps({**cfg, "model": {**cfg["model"], "use_depthwise_conv": True}}))
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(pth, config=bad)
    assert _code(e) == "model_unsupported"


def test_index_of_the_wrong_width_or_kind_is_refused(tmp_path: Path) -> None:
    pth = write_rvc(tmp_path / "m.pth", version="v2")
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(pth, index=write_index(tmp_path / "a.index", dim=256, n=300))
    assert _code(e) == "model_config_mismatch"
    junk = tmp_path / "b.index"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(pth, index=junk)
    assert _code(e) == "invalid_index"


def test_unsupported_applio_vocoder_and_weights_that_do_not_fit(tmp_path: Path) -> None:
    pth = write_rvc(tmp_path / "m.pth", applio=True)
    ckpt = load_checkpoint(pth)
    ckpt["vocoder"] = "RefineGAN"
    torch.save(ckpt, tmp_path / "refine.pth")
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(tmp_path / "refine.pth")
    assert _code(e) == "model_unsupported"
    ckpt["vocoder"] = "HiFi-GAN"
    ckpt["config"][3] = 24  # hidden_channels no longer what the weights have
    torch.save(ckpt, tmp_path / "mismatch.pth")
    with pytest.raises(AutoVoiceError) as e:
        inspect_model(tmp_path / "mismatch.pth")
    assert _code(e) == "model_config_mismatch"
