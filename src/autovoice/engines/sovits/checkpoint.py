"""so-vits-svc 4.x checkpoints: their layout, read into a
:class:`~autovoice.profiles.profile.TrainedModelInfo`.

so-vits-svc 4.x (``utils.save_checkpoint``): ``G_<step>.pth`` is a dict with ``"model"`` (the full
``SynthesizerTrn`` state dict), ``"iteration"``, ``"optimizer"`` and ``"learning_rate"``; the network's
shape lives in a separate ``config.json`` (``data.sampling_rate``, ``data.hop_length``, ``model.*``,
``spk``). A cluster model is a k-means ``kmeans_*.pt`` or a FAISS feature index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autovoice.engines.indexes import load_kmeans, read_index_shape
from autovoice.engines.model_info import mismatch
from autovoice.errors import ParameterError
from autovoice.models.safe_load import tensor_shape
from autovoice.profiles.profile import Embedder, TrainedModelInfo

#: so-vits-svc 4.1 ``model.speech_encoder`` values we run: (embedder, layer, final projection, dim).
SOVITS_SPEECH_ENCODERS: dict[str, tuple[Embedder, int, bool, int]] = {
    "vec768l12": ("contentvec", 12, False, 768),
    "vec256l9": ("contentvec", 9, True, 256),
}


#: so-vits-svc 4.1 ``model`` options we do not run (they change the network), with their default value.
_SOVITS_UNSUPPORTED = {
    "use_depthwise_conv": False,
    "use_transformer_flow": False,
    "flow_share_parameter": False,
}


def sovits_config(cfg: Mapping[str, Any], name: str = "config.json") -> dict[str, Any]:
    """The so-vits config's ``model`` section completed with 4.0 defaults, plus ``sampling_rate``,
    ``hop_length``, ``speech_encoder`` and ``version``; ``model_unsupported`` for options we do not run."""
    m = dict(cfg["model"])
    d = cfg["data"]
    for k, default in _SOVITS_UNSUPPORTED.items():
        if m.get(k, default) != default:
            raise ParameterError(
                "model_unsupported",
                f"{name}: the so-vits-svc option {k}={m[k]} is not supported by AutoVoice.",
                {"option": k},
            )
    vocoder = str(m.get("vocoder_name", "nsf-hifigan"))
    if vocoder != "nsf-hifigan":
        raise ParameterError(
            "model_unsupported",
            f"{name}: the '{vocoder[:30]}' vocoder is not supported (nsf-hifigan).",
            {"option": "vocoder_name"},
        )
    v41 = any(k in m for k in ("speech_encoder", "vocoder_name", "vol_embedding", "n_flow_layer"))
    encoder = str(m.get("speech_encoder", "vec256l9"))
    if encoder not in SOVITS_SPEECH_ENCODERS:
        raise ParameterError(
            "model_unsupported",
            f"{name}: the speech encoder '{encoder[:30]}' is not supported "
            f"({', '.join(SOVITS_SPEECH_ENCODERS)}).",
            {"option": "speech_encoder", "value": encoder[:30], "valid": list(SOVITS_SPEECH_ENCODERS)},
        )
    needed = (
        "inter_channels",
        "hidden_channels",
        "filter_channels",
        "n_heads",
        "n_layers",
        "kernel_size",
        "resblock",
        "resblock_kernel_sizes",
        "resblock_dilation_sizes",
        "upsample_rates",
        "upsample_initial_channel",
        "upsample_kernel_sizes",
        "gin_channels",
        "ssl_dim",
        "n_speakers",
    )
    missing = [k for k in needed if k not in m]
    if missing or not isinstance(d.get("sampling_rate"), int) or not isinstance(d.get("hop_length"), int):
        raise ParameterError(
            "invalid_model_config",
            f"{name} lacks so-vits-svc fields: {', '.join(missing) or 'data.sampling_rate/hop_length'}.",
            {"missing": missing},
        )
    if math.prod(m["upsample_rates"]) != d["hop_length"]:
        raise mismatch("the product of upsample_rates", d["hop_length"], math.prod(m["upsample_rates"]))
    m.update(
        sampling_rate=d["sampling_rate"],
        hop_length=d["hop_length"],
        speech_encoder=encoder,
        version="4.1" if v41 else "4.0",
        vol_embedding=bool(m.get("vol_embedding", False)),
        n_flow_layer=int(m.get("n_flow_layer", 4)),
        resblock=str(m["resblock"]),
    )
    return m


def inspect_sovits(ckpt: Mapping[str, Any], cfg: Mapping[str, Any], name: str) -> TrainedModelInfo:
    """What a so-vits-svc checkpoint ``ckpt`` (file name ``name``) with its ``config.json`` ``cfg`` is; the
    weights' shapes checked against the config (``model_config_mismatch``, ``model_unsupported``)."""
    m = sovits_config(cfg, "config.json")
    sd = ckpt["model"]
    embedder, layer, proj, dim = SOVITS_SPEECH_ENCODERS[m["speech_encoder"]]
    if m["ssl_dim"] != dim:
        raise mismatch("model.ssl_dim", dim, m["ssl_dim"], {"speech_encoder": m["speech_encoder"]})
    checks = {
        "pre.weight": (m["hidden_channels"], m["ssl_dim"], 5),
        "emb_g.weight": (m["n_speakers"], m["gin_channels"]),
        "enc_p.f0_emb.weight": (256, m["hidden_channels"]),
        "enc_p.proj.weight": (2 * m["inter_channels"], m["hidden_channels"], 1),
        "dec.conv_pre.weight_v": (m["upsample_initial_channel"], m["inter_channels"], 7),
        "emb_uv.weight": (2, m["hidden_channels"]),
    }
    for key, want in checks.items():
        got = tensor_shape(sd, key, name)
        if got != want:
            raise mismatch(f"{key}'s shape", want, got, {"key": key})
    if m["vol_embedding"] != ("emb_vol.weight" in sd):
        raise mismatch(
            "model.vol_embedding", "emb_vol in the weights" if m["vol_embedding"] else "no emb_vol", ""
        )
    n_flows = sum(
        1 for k in sd if isinstance(k, str) and k.startswith("flow.flows.") and k.endswith(".pre.weight")
    )
    if n_flows != m["n_flow_layer"]:
        raise mismatch("the number of flows", m["n_flow_layer"], n_flows)
    spk = cfg.get("spk", {})
    names: tuple[str, ...] = ()
    if isinstance(spk, dict) and spk:
        order = sorted(((int(v), str(k)) for k, v in spk.items() if isinstance(v, int)))
        names = tuple(n for _, n in order)
        if order and order[-1][0] >= m["n_speakers"]:
            raise mismatch("the largest speaker id in spk", f"< {m['n_speakers']}", order[-1][0])
    return TrainedModelInfo(
        kind="sovits",
        variant=f"sovits-{m['version']}",
        version=m["version"],
        sample_rate=int(m["sampling_rate"]),
        f0=True,
        speakers=int(m["n_speakers"]),
        speaker_names=names,
        embedder=embedder,
        embedder_layer=layer,
        final_proj=proj,
        content_dim=dim,
        hop_length=int(m["hop_length"]),
        info=f"iteration {int(ckpt['iteration'])}" if isinstance(ckpt.get("iteration"), int) else "",
        extra={"speech_encoder": m["speech_encoder"], "vol_embedding": m["vol_embedding"]},
    )


def inspect_cluster(p: Path, info: TrainedModelInfo, max_bytes: int) -> str:
    """``"index"`` or ``"kmeans"``: the kind of so-vits cluster model ``p``, checked against ``info``."""
    if info.kind != "sovits":
        raise ParameterError(
            "invalid_parameter", "A cluster model belongs to so-vits-svc models; RVC uses an .index.", {}
        )
    if p.suffix == ".index":
        dim, _ = read_index_shape(p)
        if dim != info.content_dim:
            raise mismatch("the feature index dimension", info.content_dim, dim)
        return "index"
    centers = load_kmeans(p, max_bytes=max_bytes)
    for spk, c in centers.items():
        if c.shape[1] != info.content_dim:
            raise mismatch(f"the cluster centres of '{spk}'", info.content_dim, c.shape[1])
    return "kmeans"
