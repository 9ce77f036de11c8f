"""Trained voice models users bring (RVC v1/v2, Applio, so-vits-svc 4.x): safe loading and inspection.

A ``.pth`` from the internet is a pickle, and unpickling can run code. Every checkpoint here is read by
:func:`load_checkpoint`: ``torch.load(weights_only=True)`` (torch's restricted unpickler: tensors, storages
and plain containers only) with an explicit, empty-by-default allow-list of extra globals, after a size
cap. A pickle that names anything else is refused with ``untrusted_checkpoint`` and nothing in it runs;
a file that is not a checkpoint at all (or is truncated) is ``invalid_checkpoint``.

:func:`inspect_model` reads a model's files, checks that they belong together (shapes against the
so-vits ``config.json``, the index's dimension against the model's content features) and returns a
:class:`TrainedModelInfo`, the description a profile stores with the model.

The layouts, as the real tools write them
-----------------------------------------
RVC / Applio (``save_small_model``/``extract_small_model``): a dict with ``"weight"`` (the synthesizer's
state dict without ``enc_q.*``, float16), ``"config"`` (the 18 constructor arguments of
``SynthesizerTrnMs{256,768}NSFsid``; the last is the sample rate), ``"info"``, ``"sr"`` (``"40k"``/
``"48k"``/``"32k"``, Applio: an int), ``"f0"`` (1/0), ``"version"`` (``"v1"``/``"v2"``); Applio adds
``"embedder_model"`` and ``"vocoder"`` among others.

so-vits-svc 4.x (``utils.save_checkpoint``): ``G_<step>.pth`` is a dict with ``"model"`` (the full
``SynthesizerTrn`` state dict), ``"iteration"``, ``"optimizer"`` and ``"learning_rate"``; the network's
shape lives in a separate ``config.json`` (``data.sampling_rate``, ``data.hop_length``, ``model.*``,
``spk``).
"""

from __future__ import annotations

import json
import math
import pickle  # nosec B403 # only for pickle.UnpicklingError; loads use torch.load(weights_only=True)
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from autovoice.errors import NotFoundError, ParameterError, PayloadTooLargeError

if TYPE_CHECKING:
    import torch

#: Largest accepted checkpoint. Real RVC models are ~55 MB (fp16), so-vits-svc ``G_*.pth`` with their
#: optimiser state ~500-700 MB.
MAX_CHECKPOINT_BYTES = 1 << 30
#: Largest accepted so-vits ``config.json``.
MAX_CONFIG_BYTES = 1 << 20

#: Globals a checkpoint may name beyond what ``weights_only`` allows by itself (tensors, storages, dicts,
#: lists, tuples, sets, numbers, strings). Both real layouts need nothing more: RVC's top level is an
#: ``OrderedDict`` (already allowed by torch; listed to say so), so-vits-svc's optimiser state is plain.
ALLOWED_GLOBALS: tuple[Any, ...] = (OrderedDict,)

ModelKind = Literal["rvc", "sovits"]
#: Content encoders (speech -> content features) a model can need, by registry name.
Embedder = Literal["hubert_base", "contentvec"]

#: RVC's sample-rate tags (``cpt["sr"]``).
RVC_SR_TAGS = {"32k": 32000, "40k": 40000, "48k": 48000}
#: so-vits-svc 4.1 ``model.speech_encoder`` values we run: (embedder, layer, final projection, dim).
SOVITS_SPEECH_ENCODERS: dict[str, tuple[Embedder, int, bool, int]] = {
    "vec768l12": ("contentvec", 12, False, 768),
    "vec256l9": ("contentvec", 9, True, 256),
}


@dataclass(frozen=True)
class TrainedModelInfo:
    """What a trained model is, read from its files (:func:`inspect_model`); stored with the profile.

    Attributes
    ----------
    kind
        ``"rvc"`` (RVC and Applio) or ``"sovits"`` (so-vits-svc 4.x); names the engine that runs it.
    variant
        ``"rvc-v1"``, ``"rvc-v2"``, ``"applio-v1"``, ``"applio-v2"``, ``"sovits-4.0"`` or ``"sovits-4.1"``.
    version
        The tool's own version tag: ``"v1"``/``"v2"`` (RVC), ``"4.0"``/``"4.1"`` (so-vits-svc).
    sample_rate
        Output sample rate in Hz.
    f0
        True when the model takes a pitch curve (every so-vits model; RVC models trained "with F0").
    speakers
        Number of speaker slots in the model (RVC: ``emb_g`` rows; so-vits: ``n_speakers``).
    speaker_names
        so-vits-svc's ``spk`` names in id order; empty for RVC.
    embedder
        Registry name of the content encoder the model was trained on (``"hubert_base"``,
        ``"contentvec"``).
    embedder_layer
        Transformer layer whose output is used (9 or 12).
    final_proj
        True when the layer's output goes through the encoder's final projection (768 -> 256).
    content_dim
        Width of the content features the synthesizer takes (256 or 768).
    hop_length
        Output samples per content frame.
    vocoder
        ``"nsf-hifigan"`` (the one decoder both tools' default models use).
    index_dim, index_size
        Dimension and number of vectors of the RVC retrieval index (``.index``), when one is given.
    cluster
        ``"kmeans"`` (so-vits ``kmeans_*.pt``) or ``"index"`` (so-vits feature index); ``None`` if none.
    info
        The tool's free-text note (RVC's ``"info"``, e.g. ``"300epoch"``), at most 200 characters.
    """

    kind: ModelKind
    variant: str
    version: str
    sample_rate: int
    f0: bool
    speakers: int
    embedder: Embedder
    embedder_layer: int
    final_proj: bool
    content_dim: int
    hop_length: int
    vocoder: str = "nsf-hifigan"
    speaker_names: tuple[str, ...] = ()
    index_dim: int | None = None
    index_size: int | None = None
    cluster: str | None = None
    info: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        d = asdict(self)
        d["speaker_names"] = list(self.speaker_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainedModelInfo:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["speaker_names"] = tuple(known.get("speaker_names", ()))
        known["extra"] = dict(known.get("extra", {}))
        return cls(**known)


@dataclass(frozen=True)
class ModelFiles:
    """The files of one trained model: the weights and the optional companions."""

    pth: Path
    index: Path | None = None
    config: Path | None = None
    cluster: Path | None = None


class ProfileModel(Protocol):
    """What the engines need from a model stored with a profile (``profile.models`` items)."""

    @property
    def id(self) -> str: ...

    @property
    def info(self) -> TrainedModelInfo: ...

    @property
    def files(self) -> ModelFiles: ...


# ---------------------------------------------------------------------------------------------------------
# Loading


def _check_size(path: Path, max_bytes: int, what: str) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError(
            "file_not_found", f"{what} {path.name} does not exist.", {"path": str(path)}
        ) from None
    if not path.is_file():
        raise NotFoundError("file_not_found", f"{what} {path.name} is not a file.", {"path": str(path)})
    if size > max_bytes:
        raise PayloadTooLargeError(
            "file_too_large",
            f"{what} {path.name} is {size} bytes; the limit is {max_bytes}.",
            {"size_bytes": size, "max_bytes": max_bytes},
        )
    return size


def load_checkpoint(
    path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES, extra_globals: Sequence[Any] = ()
) -> dict[str, Any]:
    """A checkpoint's top-level dict, read without running any code the file names.

    Parameters
    ----------
    path
        A ``.pth``/``.pt`` file written by ``torch.save`` (zip or legacy format).
    max_bytes
        Refuse larger files before reading them.
    extra_globals
        More allowed globals for this call only, in ``torch.serialization.safe_globals``'s form (a class,
        or ``(stand_in, "module.Name")`` to read a name as a harmless stand-in).

    Raises
    ------
    ParameterError
        ``untrusted_checkpoint`` when the pickle names a global outside torch's weights-only set and
        :data:`ALLOWED_GLOBALS` (code would run on a plain ``torch.load``); ``invalid_checkpoint`` when the
        file is not a checkpoint, is truncated, or is not a dict at the top.
    PayloadTooLargeError
        ``file_too_large`` over ``max_bytes``.
    NotFoundError
        ``file_not_found``.
    """
    import torch

    p = Path(path)
    _check_size(p, max_bytes, "Checkpoint")
    try:
        with torch.serialization.safe_globals([*ALLOWED_GLOBALS, *extra_globals]):
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text and any(w in text for w in _CODE_MARKERS):
            raise ParameterError(
                "untrusted_checkpoint",
                f"{p.name} asks to run code when loaded (its pickle names objects outside tensors and plain "
                "data), so it was refused and nothing in it was run. Re-export the model's weights from the "
                "tool that trained it, or use a checkpoint from a source you trust.",
                {"path": p.name, "reason": _first_line(text)},
            ) from None
        raise _invalid(p, text) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as exc:
        raise _invalid(p, str(exc)) from None
    if not isinstance(obj, dict):
        raise _invalid(p, f"the top level is a {type(obj).__name__}, not a dict")
    return obj


#: Words of torch's weights-only refusals that mean "this pickle names code" (not merely "not a pickle").
_CODE_MARKERS = ("GLOBAL", "global", "reduce", "Unsupported class", "blocked")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if any(w in line for w in _CODE_MARKERS):
            return line.strip()[:300]
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _invalid(p: Path, reason: str) -> ParameterError:
    return ParameterError(
        "invalid_checkpoint",
        f"{p.name} is not a readable PyTorch checkpoint (truncated, or another kind of file).",
        {"path": p.name, "reason": reason.strip().splitlines()[0][:300] if reason.strip() else ""},
    )


def load_config(path: str | Path) -> dict[str, Any]:
    """A so-vits-svc ``config.json`` as a dict; ``invalid_model_config`` when it is not JSON or not a dict."""
    p = Path(path)
    _check_size(p, MAX_CONFIG_BYTES, "Config")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(
            "invalid_model_config", f"{p.name} is not a JSON file: {exc}.", {"path": p.name}
        ) from None
    if (
        not isinstance(cfg, dict)
        or not isinstance(cfg.get("model"), dict)
        or not isinstance(cfg.get("data"), dict)
    ):
        raise ParameterError(
            "invalid_model_config",
            f"{p.name} is not a so-vits-svc config: it needs 'model' and 'data' sections.",
            {"path": p.name},
        )
    return cfg


# ---------------------------------------------------------------------------------------------------------
# Inspection


def _mismatch(
    what: str, expected: object, got: object, details: dict[str, Any] | None = None
) -> ParameterError:
    return ParameterError(
        "model_config_mismatch",
        f"The model's files do not belong together: {what} is {got}, expected {expected}.",
        {"what": what, "expected": str(expected), "got": str(got), **(details or {})},
    )


def _shape(sd: Mapping[str, Any], key: str, name: str) -> tuple[int, ...]:
    import torch

    t = sd.get(key)
    if not isinstance(t, torch.Tensor):
        raise ParameterError(
            "invalid_checkpoint",
            f"{name} has no '{key}' tensor: not a model of the expected kind.",
            {"path": name, "missing": key},
        )
    return tuple(t.shape)


def _detect_kind(ckpt: Mapping[str, Any]) -> ModelKind | None:
    if isinstance(ckpt.get("weight"), dict) and isinstance(ckpt.get("config"), list | tuple):
        return "rvc"
    if isinstance(ckpt.get("model"), dict) and any(
        isinstance(k, str) and k.startswith("enc_p.") for k in ckpt["model"]
    ):
        return "sovits"
    return None


def inspect_model(
    pth: str | Path,
    *,
    index: str | Path | None = None,
    config: str | Path | None = None,
    cluster: str | Path | None = None,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> TrainedModelInfo:
    """Read a trained model's files and describe it; checks they fit together before anything is built.

    Parameters
    ----------
    pth
        The model: an RVC/Applio ``.pth`` or a so-vits-svc ``G_*.pth``.
    index
        RVC's FAISS retrieval index (``added_*.index``), optional.
    config
        so-vits-svc's ``config.json``: required for so-vits models, ignored for RVC.
    cluster
        so-vits-svc's cluster model (``kmeans_10000.pt``) or feature index (``feature_and_index.pkl`` is
        refused: it is a pickle of Python objects), optional.

    Raises
    ------
    ParameterError
        ``untrusted_checkpoint``/``invalid_checkpoint`` (see :func:`load_checkpoint`),
        ``model_config_required`` (a so-vits model without ``config``), ``model_config_mismatch`` (shapes
        that disagree with the config, an index of the wrong dimension), ``model_unsupported`` (a layout
        or feature we do not run), ``invalid_model_config``, ``invalid_index``.
    """
    p = Path(pth)
    ckpt = load_checkpoint(p, max_bytes=max_bytes)
    kind = _detect_kind(ckpt)
    if kind == "rvc":
        info = _inspect_rvc(ckpt, p.name)
    elif kind == "sovits":
        if config is None:
            raise ParameterError(
                "model_config_required",
                f"{p.name} is a so-vits-svc model; its shape is in the config.json saved next to it "
                "during training. Give that file too.",
                {"path": p.name},
            )
        info = _inspect_sovits(ckpt, load_config(config), p.name)
    else:
        raise ParameterError(
            "invalid_checkpoint",
            f"{p.name} is a PyTorch checkpoint, but not an RVC/Applio model (keys 'weight', 'config') nor a "
            "so-vits-svc model (key 'model' with the synthesizer).",
            {"path": p.name, "keys": sorted(str(k) for k in ckpt)[:20]},
        )
    updates: dict[str, Any] = {}
    if index is not None:
        dim, size = read_index_shape(index)
        if dim != info.content_dim:
            raise _mismatch("the index dimension", info.content_dim, dim, {"index": Path(index).name})
        updates.update(index_dim=dim, index_size=size)
    if cluster is not None:
        updates["cluster"] = _inspect_cluster(Path(cluster), info, max_bytes)
    if updates:
        info = TrainedModelInfo(**{**_fields(info), **updates})
    return info


def _fields(info: TrainedModelInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in TrainedModelInfo.__dataclass_fields__}


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


def _inspect_rvc(ckpt: Mapping[str, Any], name: str) -> TrainedModelInfo:
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
    phone = _shape(sd, "enc_p.emb_phone.weight", name)
    content_dim = 256 if version == "v1" else 768
    if phone != (cfg["hidden_channels"], content_dim):
        raise _mismatch("enc_p.emb_phone.weight's shape", (cfg["hidden_channels"], content_dim), phone)
    if f0 != ("enc_p.emb_pitch.weight" in sd):
        raise _mismatch(
            "the pitch embedding", "present" if f0 else "absent", "present" if not f0 else "absent"
        )
    speakers = _shape(sd, "emb_g.weight", name)
    if speakers[1] != cfg["gin_channels"]:
        raise _mismatch("emb_g.weight's width", cfg["gin_channels"], speakers[1])
    pre = _shape(sd, "dec.conv_pre.weight", name)
    if pre[:2] != (cfg["upsample_initial_channel"], cfg["inter_channels"]):
        raise _mismatch(
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
        raise _mismatch("the product of upsample_rates", d["hop_length"], math.prod(m["upsample_rates"]))
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


def _inspect_sovits(ckpt: Mapping[str, Any], cfg: Mapping[str, Any], name: str) -> TrainedModelInfo:
    m = sovits_config(cfg, "config.json")
    sd = ckpt["model"]
    embedder, layer, proj, dim = SOVITS_SPEECH_ENCODERS[m["speech_encoder"]]
    if m["ssl_dim"] != dim:
        raise _mismatch("model.ssl_dim", dim, m["ssl_dim"], {"speech_encoder": m["speech_encoder"]})
    checks = {
        "pre.weight": (m["hidden_channels"], m["ssl_dim"], 5),
        "emb_g.weight": (m["n_speakers"], m["gin_channels"]),
        "enc_p.f0_emb.weight": (256, m["hidden_channels"]),
        "enc_p.proj.weight": (2 * m["inter_channels"], m["hidden_channels"], 1),
        "dec.conv_pre.weight_v": (m["upsample_initial_channel"], m["inter_channels"], 7),
        "emb_uv.weight": (2, m["hidden_channels"]),
    }
    for key, want in checks.items():
        got = _shape(sd, key, name)
        if got != want:
            raise _mismatch(f"{key}'s shape", want, got, {"key": key})
    if m["vol_embedding"] != ("emb_vol.weight" in sd):
        raise _mismatch(
            "model.vol_embedding", "emb_vol in the weights" if m["vol_embedding"] else "no emb_vol", ""
        )
    n_flows = sum(
        1 for k in sd if isinstance(k, str) and k.startswith("flow.flows.") and k.endswith(".pre.weight")
    )
    if n_flows != m["n_flow_layer"]:
        raise _mismatch("the number of flows", m["n_flow_layer"], n_flows)
    spk = cfg.get("spk", {})
    names: tuple[str, ...] = ()
    if isinstance(spk, dict) and spk:
        order = sorted(((int(v), str(k)) for k, v in spk.items() if isinstance(v, int)))
        names = tuple(n for _, n in order)
        if order and order[-1][0] >= m["n_speakers"]:
            raise _mismatch("the largest speaker id in spk", f"< {m['n_speakers']}", order[-1][0])
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


def read_index_shape(path: str | Path) -> tuple[int, int]:
    """``(dimension, number of vectors)`` of a FAISS index file; ``invalid_index`` when unreadable."""
    index = read_index(path)
    return int(index.d), int(index.ntotal)


def read_index(path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Any:
    """A FAISS index read from ``path`` (FAISS's own binary format: no pickle); ``invalid_index`` if bad."""
    p = Path(path)
    _check_size(p, max_bytes, "Index")
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        from autovoice.models.cache import _missing

        raise _missing("faiss-cpu", "RVC retrieval") from exc
    try:
        index = faiss.read_index(str(p))
    except RuntimeError as exc:
        raise ParameterError(
            "invalid_index",
            f"{p.name} is not a FAISS index (truncated, or another kind of file).",
            {"path": p.name, "reason": str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ""},
        ) from None
    if int(index.ntotal) < 1:
        raise ParameterError("invalid_index", f"{p.name} is an empty FAISS index.", {"path": p.name})
    return index


def _inspect_cluster(p: Path, info: TrainedModelInfo, max_bytes: int) -> str:
    if info.kind != "sovits":
        raise ParameterError(
            "invalid_parameter", "A cluster model belongs to so-vits-svc models; RVC uses an .index.", {}
        )
    if p.suffix == ".index":
        dim, _ = read_index_shape(p)
        if dim != info.content_dim:
            raise _mismatch("the feature index dimension", info.content_dim, dim)
        return "index"
    centers = load_kmeans(p, max_bytes=max_bytes)
    for spk, c in centers.items():
        if c.shape[1] != info.content_dim:
            raise _mismatch(f"the cluster centres of '{spk}'", info.content_dim, c.shape[1])
    return "kmeans"


def numpy_array_globals() -> list[Any]:
    """What a pickled numpy array names (numpy 1.x and 2.x spellings): the array rebuilder, ``ndarray``,
    ``dtype`` and the float dtype classes. They build arrays from bytes and nothing else; only the cluster
    loader allows them (sklearn's k-means centres are numpy arrays)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    out: list[Any] = [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),
        (_reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
    ]
    for dt in (np.float32, np.float64):
        cls = type(np.dtype(dt))
        out.append((cls, f"numpy.dtypes.{cls.__name__}"))
    return out


def load_kmeans(path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict[str, torch.Tensor]:
    """so-vits-svc's ``kmeans_*.pt``: speaker -> ``(n_clusters, dim)`` centres.

    The file is ``torch.save({spk: {"n_features_in_", "_n_threads", "cluster_centers_"}})`` with numpy
    arrays (read with :func:`numpy_array_globals` allowed); only ``cluster_centers_`` is used. Raises
    ``invalid_checkpoint`` for another layout.
    """
    import numpy as np
    import torch

    p = Path(path)
    ckpt = load_checkpoint(p, max_bytes=max_bytes, extra_globals=numpy_array_globals())
    out: dict[str, torch.Tensor] = {}
    for spk, entry in ckpt.items():
        centres = entry.get("cluster_centers_") if isinstance(entry, dict) else None
        if isinstance(centres, np.ndarray):
            centres = torch.from_numpy(centres)
        if not isinstance(centres, torch.Tensor) or centres.ndim != 2:
            raise ParameterError(
                "invalid_checkpoint",
                f"{p.name} is not a so-vits-svc cluster model (speaker -> cluster_centers_).",
                {"path": p.name},
            )
        out[str(spk)] = centres.float()
    if not out:
        raise ParameterError("invalid_checkpoint", f"{p.name} holds no cluster centres.", {"path": p.name})
    return out


def find_profile_model(profile: object, model_id: str | None, kind: ModelKind) -> ProfileModel:
    """The profile's trained model ``model_id`` (or its first model of ``kind`` when ``None``).

    ``profile.models`` is the list the profile stores (items follow :class:`ProfileModel`).

    Raises
    ------
    ParameterError
        ``model_not_found`` when the profile has no such model (the message lists what it has).
    """
    models: Sequence[ProfileModel] = getattr(profile, "models", None) or ()
    for m in models:
        if (model_id is None and m.info.kind == kind) or m.id == model_id:
            if m.info.kind != kind:
                raise ParameterError(
                    "model_kind_mismatch",
                    f"Model '{model_id}' is a {m.info.kind} model; the {kind} engine cannot run it.",
                    {"model_id": model_id, "kind": m.info.kind},
                )
            return m
    name = getattr(profile, "name", "?")
    have = [f"{m.id} ({m.info.kind})" for m in models]
    raise ParameterError(
        "model_not_found",
        f"Profile '{name}' has no {kind} model"
        + (f" '{model_id}'" if model_id else "")
        + (f"; it has: {', '.join(have)}." if have else "; add one with `autovoice profile add-model`."),
        {"profile": name, "model_id": model_id, "models": have},
    )
