"""RVC / Applio checkpoints: their layout, read into a
:class:`~autovoice.profiles.profile.TrainedModelInfo`.

RVC / Applio (``save_small_model``/``extract_small_model``) write a dict with ``"weight"`` (the
synthesizer's state dict without ``enc_q.*``, float16), ``"config"`` (the 18 constructor arguments of
``SynthesizerTrnMs{256,768}NSFsid``; the last is the sample rate), ``"info"``, ``"sr"`` (``"40k"``/
``"48k"``/``"32k"``, Applio: an int), ``"f0"`` (1/0), ``"version"`` (``"v1"``/``"v2"``); Applio adds
``"embedder_model"`` and ``"vocoder"`` among others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autovoice.engines.model_info import mismatch
from autovoice.errors import ParameterError
from autovoice.models.safe_load import tensor_shape
from autovoice.profiles.profile import Embedder, TrainedModelInfo

#: RVC's sample-rate tags (``cpt["sr"]``).
RVC_SR_TAGS = {"32k": 32000, "40k": 40000, "48k": 48000}


#: RVC's ``config`` list: the constructor arguments of its synthesizers, in order.
RVC_CONFIG_FIELDS = (
    "spec_channels",
    "segment_size",
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "p_dropout",
    "resblock",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "upsample_rates",
    "upsample_initial_channel",
    "upsample_kernel_sizes",
    "spk_embed_dim",
    "gin_channels",
    "sr",
)


def rvc_config(ckpt: Mapping[str, Any], name: str = "model") -> dict[str, Any]:
    """RVC's ``config`` list as a dict of named fields (``sr`` in Hz), checked for plain types."""
    raw = ckpt.get("config")
    if not isinstance(raw, list | tuple) or len(raw) != len(RVC_CONFIG_FIELDS):
        raise ParameterError(
            "invalid_checkpoint",
            f"{name}: RVC's 'config' must list {len(RVC_CONFIG_FIELDS)} values.",
            {"path": name, "length": len(raw) if isinstance(raw, list | tuple) else None},
        )
    cfg = dict(zip(RVC_CONFIG_FIELDS, raw, strict=True))
    sr = cfg["sr"]
    if isinstance(sr, str):
        sr = RVC_SR_TAGS.get(sr)
    ints = [k for k in RVC_CONFIG_FIELDS if k not in ("p_dropout", "resblock", "sr") and "sizes" not in k]
    ints.remove("upsample_rates")
    ok = isinstance(sr, int) and sr > 0 and all(isinstance(cfg[k], int) and cfg[k] >= 0 for k in ints)
    ok = ok and str(cfg["resblock"]) in ("1", "2")
    for k in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
        ok = ok and isinstance(cfg[k], list | tuple) and all(isinstance(v, int) and v > 0 for v in cfg[k])
    ok = ok and isinstance(cfg["resblock_dilation_sizes"], list | tuple)
    ok = ok and all(
        isinstance(d, list | tuple) and all(isinstance(v, int) and v > 0 for v in d)
        for d in cfg["resblock_dilation_sizes"]
    )
    if not ok:
        raise ParameterError(
            "invalid_checkpoint", f"{name}: RVC's 'config' has values of the wrong kind.", {"path": name}
        )
    cfg["sr"] = sr
    cfg["resblock"] = str(cfg["resblock"])
    return cfg


def inspect_rvc(ckpt: Mapping[str, Any], name: str) -> TrainedModelInfo:
    """What an RVC / Applio checkpoint ``ckpt`` (file name ``name``) is; its shapes checked against its
    config (``invalid_checkpoint``, ``model_config_mismatch``, ``model_unsupported``)."""
    cfg = rvc_config(ckpt, name)
    sd = ckpt["weight"]
    version = str(ckpt.get("version", "v1"))
    if version not in ("v1", "v2"):
        raise ParameterError(
            "model_unsupported",
            f"{name}: RVC version '{version[:20]}' is not supported (v1, v2).",
            {"path": name},
        )
    f0 = bool(int(ckpt.get("f0", 1)))
    phone = tensor_shape(sd, "enc_p.emb_phone.weight", name)
    content_dim = 256 if version == "v1" else 768
    if phone != (cfg["hidden_channels"], content_dim):
        raise mismatch("enc_p.emb_phone.weight's shape", (cfg["hidden_channels"], content_dim), phone)
    if f0 != ("enc_p.emb_pitch.weight" in sd):
        raise mismatch(
            "the pitch embedding", "present" if f0 else "absent", "present" if not f0 else "absent"
        )
    speakers = tensor_shape(sd, "emb_g.weight", name)
    if speakers[1] != cfg["gin_channels"]:
        raise mismatch("emb_g.weight's width", cfg["gin_channels"], speakers[1])
    pre = tensor_shape(sd, "dec.conv_pre.weight", name)
    if pre[:2] != (cfg["upsample_initial_channel"], cfg["inter_channels"]):
        raise mismatch(
            "dec.conv_pre.weight's shape", (cfg["upsample_initial_channel"], cfg["inter_channels"]), pre[:2]
        )
    vocoder = str(ckpt.get("vocoder", "HiFi-GAN"))
    if vocoder not in ("HiFi-GAN", "hifigan", "nsf-hifigan"):
        raise ParameterError(
            "model_unsupported",
            f"{name} uses Applio's '{vocoder[:30]}' vocoder; AutoVoice runs the HiFi-GAN (NSF) one.",
            {"path": name, "vocoder": vocoder[:30]},
        )
    applio = "embedder_model" in ckpt or "vocoder" in ckpt or isinstance(ckpt.get("sr"), int)
    embedder_raw = str(ckpt.get("embedder_model", "hubert_base"))
    if embedder_raw not in ("contentvec", "hubert_base", "custom"):
        raise ParameterError(
            "model_unsupported",
            f"{name} was trained on the '{embedder_raw[:40]}' content encoder; AutoVoice runs models trained "
            "on contentvec / hubert_base.",
            {"path": name, "embedder": embedder_raw[:40]},
        )
    embedder: Embedder = "contentvec" if embedder_raw == "contentvec" else "hubert_base"
    hop = math.prod(cfg["upsample_rates"])
    info_text = ckpt.get("info", "")
    return TrainedModelInfo(
        kind="rvc",
        variant=f"{'applio' if applio else 'rvc'}-{version}",
        version=version,
        sample_rate=int(cfg["sr"]),
        f0=f0,
        speakers=int(speakers[0]),
        embedder=embedder,
        embedder_layer=9 if version == "v1" else 12,
        final_proj=version == "v1",
        content_dim=content_dim,
        hop_length=hop,
        info=str(info_text)[:200] if isinstance(info_text, str | int) else "",
    )
