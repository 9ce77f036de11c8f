"""Random-weights trained models written in the exact layouts RVC, Applio and so-vits-svc write.

Tests (and ``bench/models.py``) build fixtures in seconds instead of storing big files:

- :func:`write_rvc`: an RVC ``.pth`` as ``save_small_model``/``extract_small_model`` writes it (an
  ``OrderedDict`` with ``weight`` (fp16, no ``enc_q``), ``config`` (18 values), ``info``, ``sr``, ``f0``,
  ``version``); ``applio=True`` adds Applio's keys (``embedder_model``, ``vocoder``, an int ``sr``...).
- :func:`write_sovits`: so-vits-svc's ``G_<step>.pth`` (``model``, ``iteration``, ``optimizer``,
  ``learning_rate``) plus its ``config.json``.
- :func:`write_index`: an ``IVF<n>,Flat`` FAISS index trained and filled as RVC's ``train_index`` does.
- :func:`write_evil_checkpoint`: a ``torch.save`` file whose pickle would create a marker file when loaded.

``small=True`` keeps every key and the layer structure but shrinks the widths (files of ~100 kB);
``small=False`` writes real sizes (an RVC v2 48k model is ~55 MB, as the real ones).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autovoice.engines.rvc.checkpoint import RVC_CONFIG_FIELDS
from autovoice.engines.vits import unfold_weight_norm

#: Per sample rate: (spec_channels, segment frames, upsample_rates, upsample_kernel_sizes), RVC's configs.
_RVC_SR = {
    ("v1", 40000): (1025, 32, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v1", 48000): (1025, 32, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v1", 32000): (513, 32, [10, 4, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v2", 40000): (1025, 32, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v2", 48000): (1025, 36, [12, 10, 2, 2], [24, 20, 4, 4]),
    ("v2", 32000): (513, 32, [10, 8, 2, 2], [20, 16, 4, 4]),
}
_SR_TAG = {32000: "32k", 40000: "40k", 48000: "48k"}


def rvc_config(version: str = "v2", sr: int = 48000, *, small: bool = True, speakers: int = 109) -> list[Any]:
    """RVC's ``config`` list for ``version`` at ``sr`` (real widths, or shrunk ones when ``small``)."""
    spec, seg, rates, kernels = _RVC_SR[(version, sr)]
    if small:
        return [
            spec,
            seg,
            8,
            16,
            32,
            2,
            2,
            3,
            0,
            "1",
            [3, 5],
            [[1, 3, 5], [1, 3, 5]],
            rates,
            32,
            kernels,
            speakers,
            8,
            sr,
        ]
    return [
        spec, seg, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        rates, 512, kernels, speakers, 256, sr,
    ]  # fmt: skip


def rvc_state(config: list[Any], *, version: str, f0: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random-weights RVC synthesizer state dict as the trainer holds it (``weight_g``/``weight_v``)."""
    from autovoice.engines.rvc.model import RVCSynthesizer

    cfg = dict(zip(RVC_CONFIG_FIELDS, config, strict=True))
    torch.manual_seed(seed)
    model = RVCSynthesizer(cfg, version=version, f0=f0)
    _randomise(model, seed)
    return unfold_weight_norm(model)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Weights of a plausible scale (trained-like: no zero-initialised layers), deterministic per seed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("gamma",)):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.ndim <= 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = max(1, math.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def write_rvc(
    path: str | Path,
    *,
    version: str = "v2",
    sr: int = 48000,
    f0: bool = True,
    small: bool = True,
    applio: bool = False,
    speakers: int = 109,
    seed: int = 0,
) -> Path:
    """Write an RVC (or Applio) model file; returns ``path``."""
    config = rvc_config(version, sr, small=small, speakers=speakers)
    state = rvc_state(config, version=version, f0=f0, seed=seed)
    ckpt: OrderedDict[str, Any] = OrderedDict()
    ckpt["weight"] = {k: v.half() for k, v in state.items() if "enc_q" not in k}
    ckpt["config"] = config
    if applio:
        ckpt["epoch"] = 300
        ckpt["step"] = 12000
        ckpt["sr"] = sr
        ckpt["f0"] = int(f0)
        ckpt["version"] = version
        ckpt["creation_date"] = "2026-01-01T00:00:00"
        ckpt["overtrain_info"] = "Smoothed Loss Gen 30.1 | Smoothed Loss Disc 3.2"
        ckpt["dataset_length"] = 120
        ckpt["model_name"] = Path(path).stem
        ckpt["author"] = "tests"
        ckpt["embedder_model"] = "contentvec"
        ckpt["speakers_id"] = 0
        ckpt["vocoder"] = "HiFi-GAN"
        ckpt["model_hash"] = "0" * 64
    else:
        ckpt["info"] = "300epoch"
        ckpt["sr"] = _SR_TAG[sr]
        ckpt["f0"] = int(f0)
        ckpt["version"] = version
    p = Path(path)
    torch.save(ckpt, p)
    return p


def sovits_config(
    version: str = "4.1",
    *,
    small: bool = True,
    speakers: tuple[str, ...] = ("alice", "bob"),
    vol: bool = False,
) -> dict[str, Any]:
    """A so-vits-svc ``config.json`` document (44.1 kHz, hop 512, as the project's templates)."""
    ssl = 768 if version == "4.1" else 256
    if small:
        widths = {"inter_channels": 8, "hidden_channels": 16, "filter_channels": 32, "n_layers": 2,
                  "upsample_initial_channel": 32, "gin_channels": 8, "resblock_kernel_sizes": [3, 5],
                  "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]]}  # fmt: skip
    else:
        widths = {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_layers": 6,
                  "upsample_initial_channel": 512, "gin_channels": 768 if version == "4.1" else 256,
                  "resblock_kernel_sizes": [3, 7, 11],
                  "resblock_dilation_sizes": [[1, 3, 5]] * 3}  # fmt: skip
    model: dict[str, Any] = {
        **widths,
        "n_heads": 2,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "resblock": "1",
        "upsample_rates": [8, 8, 2, 2, 2],
        "upsample_kernel_sizes": [16, 16, 4, 4, 4],
        "n_layers_q": 3,
        "use_spectral_norm": False,
        "ssl_dim": ssl,
        "n_speakers": 200 if not small else 4,
    }
    if version == "4.1":
        model.update(
            n_layers_trans_flow=3,
            n_flow_layer=4,
            vocoder_name="nsf-hifigan",
            speech_encoder="vec768l12",
            speaker_embedding=False,
            vol_embedding=vol,
            use_depthwise_conv=False,
            flow_share_parameter=False,
            use_automatic_f0_prediction=True,
            use_transformer_flow=False,
        )
    return {
        "train": {
            "log_interval": 200,
            "eval_interval": 800,
            "seed": 1234,
            "epochs": 10000,
            "learning_rate": 0.0001,
            "betas": [0.8, 0.99],
            "eps": 1e-09,
            "batch_size": 6,
            "fp16_run": False,
            "segment_size": 10240,
            "keep_ckpts": 3,
        },
        "data": {
            "training_files": "filelists/train.txt",
            "validation_files": "filelists/val.txt",
            "max_wav_value": 32768.0,
            "sampling_rate": 44100,
            "filter_length": 2048,
            "hop_length": 512,
            "win_length": 2048,
            "n_mel_channels": 80,
            "mel_fmin": 0.0,
            "mel_fmax": 22050,
            "unit_interpolate_mode": "nearest",
        },
        "model": model,
        "spk": {name: i for i, name in enumerate(speakers)},
    }


def write_sovits(
    folder: str | Path,
    *,
    version: str = "4.1",
    small: bool = True,
    step: int = 8000,
    speakers: tuple[str, ...] = ("alice", "bob"),
    vol: bool = False,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``G_<step>.pth`` and ``config.json`` into ``folder``; returns both paths."""
    from autovoice.engines.sovits.checkpoint import sovits_config as complete
    from autovoice.engines.sovits.model import SovitsSynthesizer

    cfg = sovits_config(version, small=small, speakers=speakers, vol=vol)
    m = complete(cfg)
    m["filter_length"] = cfg["data"]["filter_length"]
    torch.manual_seed(seed)
    model = SovitsSynthesizer(m)
    _randomise(model, seed)
    state = unfold_weight_norm(model)
    params = list(state.values())
    optimizer = {
        "state": {
            i: {
                "step": torch.tensor(float(step)),
                "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.zeros_like(p),
            }
            for i, p in enumerate(params[:4])
        },
        "param_groups": [
            {"lr": 1e-4, "betas": (0.8, 0.99), "eps": 1e-9, "weight_decay": 0.01, "amsgrad": False,
             "foreach": None, "maximize": False, "capturable": False, "differentiable": False,
             "fused": None, "initial_lr": 1e-4, "params": list(range(len(params)))}
        ],
    }  # fmt: skip
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    pth = out / f"G_{step}.pth"
    torch.save({"model": state, "iteration": step // 100, "optimizer": optimizer, "learning_rate": 1e-4}, pth)
    config = out / "config.json"
    config.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return pth, config


def write_index(path: str | Path, *, dim: int = 768, n: int = 2000, seed: int = 0) -> Path:
    """An ``IVF<n_ivf>,Flat`` index over ``n`` random vectors, built as RVC's ``train_index`` builds it."""
    import faiss

    rng = np.random.default_rng(seed)
    big = rng.standard_normal((n, dim)).astype(np.float32)
    n_ivf = max(1, min(int(16 * np.sqrt(n)), n // 39))
    index = faiss.index_factory(dim, f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(big)
    for i in range(0, n, 8192):
        index.add(big[i : i + 8192])
    p = Path(path)
    faiss.write_index(index, str(p))
    return p


class _Evil:
    """Pickles as a call to ``open(marker, "w")``: loading it with plain ``torch.load`` creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def write_evil_checkpoint(path: str | Path, marker: str | Path) -> Path:
    """An RVC-looking checkpoint whose pickle would create ``marker`` if unpickled without restrictions."""
    p = Path(path)
    torch.save({"weight": {"x": torch.zeros(2)}, "config": [_Evil(Path(marker))], "version": "v2"}, p)
    return p


def write_fairseq_hubert(
    path: str | Path,
    *,
    hidden: int = 32,
    layers: int = 9,
    heads: int = 2,
    ffn: int = 64,
    conv: int = 16,
    final_dim: int = 256,
    seed: int = 0,
) -> Path:
    """A random-weights HuBERT/ContentVec checkpoint in fairseq's layout, as ``hubert_base.pt`` is: ``args``
    an ``argparse.Namespace``, ``model`` every fairseq key (``final_proj``, ``label_embs_concat`` too).

    RVC v1 / so-vits ``vec256l9`` models need ``layers >= 9`` and ``final_dim = 256``; v2 / ``vec768l12``
    ones ``hidden = 768`` and ``layers >= 12``.
    """
    import argparse

    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    cfg = HubertConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
        conv_dim=(conv,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    sd = HubertModel(cfg).state_dict()
    out: dict[str, torch.Tensor] = {}
    for i in range(7):
        out[f"feature_extractor.conv_layers.{i}.0.weight"] = sd[
            f"feature_extractor.conv_layers.{i}.conv.weight"
        ]
    out["feature_extractor.conv_layers.0.2.weight"] = sd["feature_extractor.conv_layers.0.layer_norm.weight"]
    out["feature_extractor.conv_layers.0.2.bias"] = sd["feature_extractor.conv_layers.0.layer_norm.bias"]
    pairs = {"post_extract_proj": "feature_projection.projection",
             "layer_norm": "feature_projection.layer_norm",
             "encoder.layer_norm": "encoder.layer_norm"}  # fmt: skip
    for fs, hf in pairs.items():
        for t in ("weight", "bias"):
            out[f"{fs}.{t}"] = sd[f"{hf}.{t}"]
    out["mask_emb"] = sd["masked_spec_embed"]
    out["encoder.pos_conv.0.bias"] = sd["encoder.pos_conv_embed.conv.bias"]
    out["encoder.pos_conv.0.weight_g"] = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    out["encoder.pos_conv.0.weight_v"] = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    layer = {"self_attn.k_proj": "attention.k_proj", "self_attn.v_proj": "attention.v_proj",
             "self_attn.q_proj": "attention.q_proj", "self_attn.out_proj": "attention.out_proj",
             "self_attn_layer_norm": "layer_norm", "fc1": "feed_forward.intermediate_dense",
             "fc2": "feed_forward.output_dense", "final_layer_norm": "final_layer_norm"}  # fmt: skip
    for n in range(layers):
        for fs, hf in layer.items():
            for t in ("weight", "bias"):
                out[f"encoder.layers.{n}.{fs}.{t}"] = sd[f"encoder.layers.{n}.{hf}.{t}"]
    gen = torch.Generator().manual_seed(seed)
    out["final_proj.weight"] = torch.randn(final_dim, hidden, generator=gen) / math.sqrt(hidden)
    out["final_proj.bias"] = torch.zeros(final_dim)
    out["label_embs_concat"] = torch.randn(504, final_dim, generator=gen)
    args = argparse.Namespace(encoder_attention_heads=heads, encoder_layers=layers, label_rate=50)
    p = Path(path)
    torch.save({"args": args, "cfg": None, "model": {k: v.clone() for k, v in out.items()}}, p)
    return p


class Model:
    """A profile's stored model as the engines read it (``id``, ``info``, ``files``)."""

    def __init__(self, id: str, info: Any, files: Any) -> None:
        self.id = id
        self.info = info
        self.files = files
