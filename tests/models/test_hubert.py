"""HuBERT/ContentVec loading: fairseq layout mapped key by key, HF folders, outputs equal to transformers'."""

from __future__ import annotations

import argparse
import enum
import sys
import types
import typing
from pathlib import Path

import pytest
import torch

from autovoice.errors import ParameterError
from autovoice.models.hubert import (
    fairseq_to_hf,
    load_content_encoder,
    load_fairseq_hubert,
    read_fairseq_checkpoint,
)

HIDDEN, LAYERS, HEADS, FFN, CONV, POS_K, POS_G, FINAL = 32, 3, 2, 64, 8, 16, 2, 12
#: fairseq ``HubertModel`` parameter names per transformer layer (TransformerSentenceEncoderLayer).
FAIRSEQ_LAYER = ("self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj",
                 "self_attn_layer_norm", "fc1", "fc2", "final_layer_norm")  # fmt: skip
#: The other way round, written out independently of the loader: HF name -> fairseq name.
HF_TO_FAIRSEQ_LAYER = {"attention.k_proj": "self_attn.k_proj", "attention.v_proj": "self_attn.v_proj",
                       "attention.q_proj": "self_attn.q_proj", "attention.out_proj": "self_attn.out_proj",
                       "layer_norm": "self_attn_layer_norm", "feed_forward.intermediate_dense": "fc1",
                       "feed_forward.output_dense": "fc2",
                       "final_layer_norm": "final_layer_norm"}  # fmt: skip


def _hf_model(seed: int = 0) -> torch.nn.Module:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    cfg = HubertConfig(
        hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN,
        conv_dim=(CONV,) * 7, num_conv_pos_embeddings=POS_K, num_conv_pos_embedding_groups=POS_G,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0, layer_norm_eps=1e-5,
    )  # fmt: skip
    model = HubertModel(cfg)
    with torch.no_grad():  # trained-like values everywhere (norms and biases included)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _to_fairseq(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The fairseq checkpoint layout of an HF model (every key fairseq's HubertModel has)."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for i in range(7):
        out[f"feature_extractor.conv_layers.{i}.0.weight"] = sd[
            f"feature_extractor.conv_layers.{i}.conv.weight"
        ]
    out["feature_extractor.conv_layers.0.2.weight"] = sd["feature_extractor.conv_layers.0.layer_norm.weight"]
    out["feature_extractor.conv_layers.0.2.bias"] = sd["feature_extractor.conv_layers.0.layer_norm.bias"]
    for t in ("weight", "bias"):
        out[f"post_extract_proj.{t}"] = sd[f"feature_projection.projection.{t}"]
        out[f"layer_norm.{t}"] = sd[f"feature_projection.layer_norm.{t}"]
        out[f"encoder.layer_norm.{t}"] = sd[f"encoder.layer_norm.{t}"]
    out["mask_emb"] = sd["masked_spec_embed"]
    out["encoder.pos_conv.0.bias"] = sd["encoder.pos_conv_embed.conv.bias"]
    out["encoder.pos_conv.0.weight_g"] = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    out["encoder.pos_conv.0.weight_v"] = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    for n in range(LAYERS):
        for hf, fs in HF_TO_FAIRSEQ_LAYER.items():
            for t in ("weight", "bias"):
                out[f"encoder.layers.{n}.{fs}.{t}"] = sd[f"encoder.layers.{n}.{hf}.{t}"]
    gen = torch.Generator().manual_seed(7)
    out["final_proj.weight"] = torch.randn(FINAL, HIDDEN, generator=gen) * 0.1
    out["final_proj.bias"] = torch.randn(FINAL, generator=gen) * 0.1
    out["label_embs_concat"] = torch.randn(504, FINAL, generator=gen)
    return {k: v.clone() for k, v in out.items()}


def _fairseq_file(path: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = _to_fairseq(model)
    args = argparse.Namespace(encoder_attention_heads=HEADS, encoder_layers=LAYERS, label_rate=50)
    torch.save({"args": args, "cfg": None, "model": state, "optimizer_history": [], "extra_state": {}}, path)
    return state


def test_every_fairseq_key_is_mapped_and_every_hf_key_is_filled() -> None:
    model = _hf_model()
    fairseq = _to_fairseq(model)
    expected_layer_keys = {
        f"encoder.layers.{n}.{p}.{t}"
        for n in range(LAYERS)
        for p in FAIRSEQ_LAYER
        for t in ("weight", "bias")
    }
    assert expected_layer_keys <= set(fairseq)
    mapped, unmapped = fairseq_to_hf(fairseq)
    assert sorted(unmapped) == ["final_proj.bias", "final_proj.weight", "label_embs_concat"]
    assert set(mapped) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(mapped[k], v.float()), k


def test_fairseq_checkpoint_reproduces_transformers(tmp_path: Path) -> None:
    model = _hf_model(1)
    state = _fairseq_file(tmp_path / "hubert_base.pt", model)
    enc = load_content_encoder(tmp_path / "hubert_base.pt")
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(3)) * 0.1
    with torch.no_grad():
        ref = model(wav, output_hidden_states=True).hidden_states
    for layer in (1, LAYERS):
        got = enc.features(wav, layer=layer)
        assert got.shape == (1, 49, HIDDEN)
        assert torch.abs(got - ref[layer]).max() <= 1e-5
    projected = enc.features(wav, layer=2, final_proj=True)
    manual = ref[2] @ state["final_proj.weight"].T + state["final_proj.bias"]
    assert torch.abs(projected - manual).max() <= 1e-5


def test_hf_folder_reproduces_transformers(tmp_path: Path) -> None:
    model = _hf_model(2)
    model.save_pretrained(tmp_path / "contentvec")
    enc = load_content_encoder(tmp_path / "contentvec")
    wav = torch.randn(1, 8000, generator=torch.Generator().manual_seed(4)) * 0.1
    with torch.no_grad():
        ref = model(wav).last_hidden_state
    assert torch.abs(enc.features(wav, layer=LAYERS) - ref).max() <= 1e-5
    with pytest.raises(ParameterError) as e:
        enc.features(wav, layer=LAYERS, final_proj=True)
    assert e.value.code == "missing_final_proj"


class _Mode(enum.Enum):
    DEFAULT = "default"


def test_fairseq_options_are_read_inert_and_code_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _hf_model(3)
    _fairseq_file(tmp_path / "ok.pt", model)
    ckpt = read_fairseq_checkpoint(tmp_path / "ok.pt")
    assert type(ckpt["args"]).__name__ == "_Inert"
    assert ckpt["args"].state["label_rate"] == 50

    # newer fairseq: a config object from fairseq's own classes, with typing and enum metadata
    fake = types.ModuleType("fairseq.dataclass.configs")

    class FairseqConfig:
        pass

    for cls in (FairseqConfig, _Mode):
        cls.__module__, cls.__qualname__ = fake.__name__, cls.__name__
        setattr(fake, cls.__name__, cls)
    for name in ("fairseq", "fairseq.dataclass"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    cfg = FairseqConfig()
    cfg.__dict__.update(mode=_Mode.DEFAULT, ref_type=typing.Dict[str, typing.Any], object_type=dict)  # noqa: UP006
    torch.save({"cfg": cfg, "model": _to_fairseq(model)}, tmp_path / "cfg.pt")
    for name in ("fairseq", "fairseq.dataclass", fake.__name__):
        monkeypatch.delitem(sys.modules, name)  # fairseq is not installed when the file is read
    enc = load_fairseq_hubert(tmp_path / "cfg.pt")
    assert enc.hidden_size == HIDDEN

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    torch.save({"args": Evil(), "model": {}}, tmp_path / "evil.pt")
    with pytest.raises(ParameterError) as e:
        load_fairseq_hubert(tmp_path / "evil.pt")
    assert e.value.code == "untrusted_checkpoint"
    assert not marker.exists()
