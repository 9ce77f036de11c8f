"""HuBERT / ContentVec content encoders through ``transformers.HubertModel``, from either layout users have.

fairseq checkpoints (``hubert_base.pt`` as RVC ships it, ContentVec's ``checkpoint_best_legacy_500.pt`` as
so-vits-svc uses it) are mapped key by key onto ``HubertModel`` without installing fairseq
(:func:`fairseq_to_hf`); Hugging Face folders (Applio's ``contentvec``, ``lengyue233/content-vec-best``: a
``config.json`` with ``model.safetensors`` or ``pytorch_model.bin``) load as they are. The projection to
256 dimensions that RVC v1 and so-vits ``vec256l9`` use (fairseq ``final_proj``) is kept next to the model.

Reading is safe: safetensors, or ``torch.load(weights_only=True)``. A fairseq checkpoint also pickles its
training options (``argparse.Namespace``, omegaconf/fairseq config objects); those names, and only
those, are read as inert attribute bags (:class:`_Inert`), never the real classes, so nothing runs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autovoice.errors import ModelUnavailableError, ParameterError, unknown_choice
from autovoice.models.safe_load import MAX_CHECKPOINT_BYTES, load_checkpoint

if TYPE_CHECKING:
    from autovoice.config import Settings

#: Pickled globals of a fairseq checkpoint that are read as :class:`_Inert` (its training options: an
#: ``argparse.Namespace`` or omegaconf/fairseq config objects, whose metadata names types and enums).
INERT_PREFIXES = ("argparse.Namespace", "omegaconf.", "fairseq.", "enum.", "typing.", "pathlib.")
#: Single names the options' metadata uses (type references, enum/generic rebuilders); read inert too.
INERT_NAMES = frozenset(
    {
        *(
            f"builtins.{t}"
            for t in ("dict", "list", "tuple", "set", "object", "int", "float", "str", "bool", "type")
        ),
        "builtins.getattr",
        "operator.getitem",
        "_operator.getitem",
        "collections.defaultdict",
    }
)
#: fairseq names -> ``HubertModel`` names (as transformers' own conversion script maps them).
_LAYER_MAP = {
    "self_attn.k_proj": "attention.k_proj",
    "self_attn.v_proj": "attention.v_proj",
    "self_attn.q_proj": "attention.q_proj",
    "self_attn.out_proj": "attention.out_proj",
    "self_attn_layer_norm": "layer_norm",
    "fc1": "feed_forward.intermediate_dense",
    "fc2": "feed_forward.output_dense",
    "final_layer_norm": "final_layer_norm",
}
#: fairseq keys that are training-only and have no place in ``HubertModel``.
_UNUSED = ("label_embs_concat", "final_proj.weight", "final_proj.bias")


class _Inert:
    """Stands in for a pickled training-options object: keeps its state, runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


@dataclass
class ContentEncoder:
    """A loaded content encoder: ``HubertModel`` plus the optional 768 -> 256 ``final_proj``."""

    model: Any  # transformers.HubertModel
    final_proj: nn.Linear | None

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def to(self, device: str) -> ContentEncoder:
        self.model.to(device)
        if self.final_proj is not None:
            self.final_proj.to(device)
        return self

    @torch.no_grad()
    def features(self, wav16k: torch.Tensor, *, layer: int, final_proj: bool = False) -> torch.Tensor:
        """``(batch, frames, dim)`` features of 16 kHz audio ``(batch, samples)``, 50 frames per second.

        ``layer`` counts transformer layers from 1 (fairseq's ``output_layer``); ``final_proj`` applies
        the 256-d projection (``missing_final_proj`` if the checkpoint has none).
        """
        n_layers = int(self.model.config.num_hidden_layers)
        if not 1 <= layer <= n_layers:
            raise ParameterError(
                "invalid_parameter",
                f"Layer {layer} is outside 1..{n_layers}.",
                {"layer": layer, "max": n_layers},
            )
        out = self.model(wav16k, output_hidden_states=True)
        h: torch.Tensor = out.hidden_states[layer]
        if final_proj:
            if self.final_proj is None:
                raise ParameterError(
                    "missing_final_proj",
                    "This content encoder has no final_proj (768 -> 256) layer, which RVC v1 and so-vits "
                    "vec256l9 models need; use the fairseq checkpoint (hubert_base.pt / "
                    "checkpoint_best_legacy_500.pt).",
                    {},
                )
            h = self.final_proj(h)
        return h


def read_fairseq_checkpoint(path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict[str, Any]:
    """A fairseq checkpoint's top-level dict; its training-options objects come back as :class:`_Inert`.

    Raises ``untrusted_checkpoint`` when the pickle names anything outside :data:`INERT_PREFIXES` and
    torch's weights-only set; ``invalid_checkpoint`` when the file is not a checkpoint.
    """
    p = Path(path)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(p))
    except Exception:
        names = []
    inert = [n for n in names if n.startswith(INERT_PREFIXES) or n in INERT_NAMES]
    return load_checkpoint(p, max_bytes=max_bytes, extra_globals=[(_Inert, n) for n in inert])


def _cfg_value(ckpt: dict[str, Any], key: str) -> Any:
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        return cfg["model"].get(key)
    args = ckpt.get("args")
    state = getattr(args, "state", None)
    if isinstance(state, dict):
        return state.get(key)
    return None


def hf_config_from_fairseq(state: dict[str, torch.Tensor], ckpt: dict[str, Any] | None = None) -> Any:
    """A ``HubertConfig`` for a fairseq HuBERT state dict (its shapes, and its options when readable)."""
    from transformers import HubertConfig

    convs = sorted(
        {
            int(m.group(1))
            for k in state
            if (m := re.match(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k))
        }
    )
    if not convs or "post_extract_proj.weight" not in state:
        raise ParameterError(
            "invalid_checkpoint",
            "Not a fairseq HuBERT/ContentVec checkpoint (no conv feature extractor or post_extract_proj).",
            {},
        )
    if "feature_extractor.conv_layers.0.2.weight" not in state:
        raise ParameterError(
            "model_unsupported",
            "Only HuBERT checkpoints with the default (group-norm) feature extractor are supported.",
            {},
        )
    conv_w = [state[f"feature_extractor.conv_layers.{i}.0.weight"] for i in convs]
    hidden = int(state["post_extract_proj.weight"].shape[0])
    layers = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))})
    pos_v = state["encoder.pos_conv.0.weight_v"]
    heads = _cfg_value(ckpt or {}, "encoder_attention_heads") or max(1, hidden // 64)
    kernels = [int(w.shape[2]) for w in conv_w]
    return HubertConfig(
        hidden_size=hidden,
        num_hidden_layers=len(layers),
        num_attention_heads=int(heads),
        intermediate_size=int(state["encoder.layers.0.fc1.weight"].shape[0]),
        conv_dim=tuple(int(w.shape[0]) for w in conv_w),
        conv_kernel=tuple(kernels),
        conv_stride=tuple(5 if k == 10 else 2 for k in kernels),
        conv_bias=f"feature_extractor.conv_layers.{convs[0]}.0.bias" in state,
        feat_extract_norm="group",
        feat_proj_layer_norm=True,
        do_stable_layer_norm=False,
        num_conv_pos_embeddings=int(pos_v.shape[2]),
        num_conv_pos_embedding_groups=int(hidden // pos_v.shape[1]),
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        classifier_proj_size=int(state["final_proj.weight"].shape[0])
        if "final_proj.weight" in state
        else 256,
    )


def fairseq_to_hf(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a fairseq HuBERT state dict onto ``HubertModel``'s names.

    Returns the mapped dict and the fairseq keys that have no counterpart (training-only ones such as
    ``label_embs_concat`` and ``final_proj.*`` are expected there; anything else is reported).
    """
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, value in state.items():
        new: str | None = None
        if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", key):
            new = f"feature_extractor.conv_layers.{m.group(1)}.conv.{m.group(2)}"
        elif m := re.fullmatch(r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", key):
            new = f"feature_extractor.conv_layers.0.layer_norm.{m.group(1)}"
        elif m := re.fullmatch(r"post_extract_proj\.(weight|bias)", key):
            new = f"feature_projection.projection.{m.group(1)}"
        elif m := re.fullmatch(r"layer_norm\.(weight|bias)", key):
            new = f"feature_projection.layer_norm.{m.group(1)}"
        elif key == "encoder.pos_conv.0.bias":
            new = "encoder.pos_conv_embed.conv.bias"
        elif key == "encoder.pos_conv.0.weight_g":
            new = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
        elif key == "encoder.pos_conv.0.weight_v":
            new = "encoder.pos_conv_embed.conv.parametrizations.weight.original1"
        elif m := re.fullmatch(r"encoder\.layer_norm\.(weight|bias)", key):
            new = f"encoder.layer_norm.{m.group(1)}"
        elif key == "mask_emb":
            new = "masked_spec_embed"
        elif m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
            part = _LAYER_MAP.get(m.group(2))
            if part is not None:
                new = f"encoder.layers.{m.group(1)}.{part}.{m.group(3)}"
        if new is None:
            unmapped.append(key)
        else:
            out[new] = value.float()
    return out, unmapped


def load_fairseq_hubert(path: str | Path) -> ContentEncoder:
    """A content encoder from a fairseq ``.pt`` (``hubert_base.pt``, ``checkpoint_best_legacy_500.pt``)."""
    from transformers import HubertModel

    p = Path(path)
    ckpt = read_fairseq_checkpoint(p)
    state = ckpt.get("model")
    if not isinstance(state, dict):
        raise ParameterError(
            "invalid_checkpoint",
            f"{p.name} is not a fairseq checkpoint (no 'model' state dict).",
            {"path": p.name},
        )
    config = hf_config_from_fairseq(state, ckpt)
    mapped, unmapped = fairseq_to_hf(state)
    unexpected = [k for k in unmapped if k not in _UNUSED]
    if unexpected:
        raise ParameterError(
            "model_unsupported",
            f"{p.name} has weights AutoVoice cannot place in HuBERT: {', '.join(unexpected[:5])}.",
            {"path": p.name, "keys": unexpected[:20]},
        )
    model = HubertModel(config)
    _load_strict(model, mapped, p.name)
    proj = None
    if "final_proj.weight" in state:
        w = state["final_proj.weight"].float()
        proj = nn.Linear(w.shape[1], w.shape[0])
        proj.load_state_dict({"weight": w, "bias": state["final_proj.bias"].float()})
    return ContentEncoder(model.eval(), proj.eval() if proj is not None else None)


def load_hf_hubert(folder: str | Path) -> ContentEncoder:
    """A content encoder from a Hugging Face folder (``config.json`` + ``model.safetensors`` or
    ``pytorch_model.bin``). A ``final_proj`` in the weights (``HubertModelWithFinalProj``) is kept."""
    d = Path(folder)
    for weights in (d / "model.safetensors", d / "pytorch_model.bin"):
        if weights.is_file():
            return load_hf_files(d / "config.json", weights)
    raise ParameterError(
        "invalid_checkpoint",
        f"{d.name} has neither model.safetensors nor pytorch_model.bin.",
        {"path": d.name},
    )


def load_hf_files(config_path: str | Path, weights: str | Path) -> ContentEncoder:
    """A content encoder from a Hugging Face ``config.json`` and its weights (safetensors or ``.bin``)."""
    from transformers import HubertConfig, HubertModel

    d = Path(weights)
    try:
        raw = json.loads(Path(config_path).read_text(encoding="utf-8"))
        config = HubertConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
    except (OSError, ValueError, TypeError) as exc:
        raise ParameterError(
            "invalid_checkpoint",
            f"No readable HuBERT config.json next to {d.name} ({exc}).",
            {"path": d.name},
        ) from None
    state: dict[str, torch.Tensor]
    if d.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(d))
    else:
        state = load_checkpoint(d)
    state = {k.removeprefix("hubert."): v.float() for k, v in state.items()}
    proj = None
    if "final_proj.weight" in state:
        w, b = state.pop("final_proj.weight"), state.pop("final_proj.bias")
        proj = nn.Linear(w.shape[1], w.shape[0])
        proj.load_state_dict({"weight": w, "bias": b})
    for k in ("weight_g", "weight_v"):  # older transformers saved the positional conv's weight norm by name
        old = f"encoder.pos_conv_embed.conv.{k}"
        if old in state:
            state[
                f"encoder.pos_conv_embed.conv.parametrizations.weight.original{0 if k == 'weight_g' else 1}"
            ] = state.pop(old)
    model = HubertModel(config)
    _load_strict(model, state, d.name)
    return ContentEncoder(model.eval(), proj.eval() if proj is not None else None)


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = (lines[1] if len(lines) > 1 else lines[0] if lines else "")[:300]
        raise ParameterError(
            "model_config_mismatch", f"{name}: the weights do not fit HuBERT ({reason}).", {"path": name}
        ) from None


def load_content_encoder(path: str | Path) -> ContentEncoder:
    """A content encoder from a fairseq ``.pt`` file or a Hugging Face folder."""
    p = Path(path)
    return load_hf_hubert(p) if p.is_dir() else load_fairseq_hubert(p)


# ---------------------------------------------------------------------------------------------------------
# Where the encoders come from: the user's own copy (``autovoice models add``) or the weights registry.

#: One embedder, two names: RVC's ``hubert_base.pt`` is ContentVec's 500-class legacy model (its maintainers
#: confirmed it; Applio calls the same weights ``contentvec``). A model trained on either runs with
#: either file layout, whichever name the user added it under.
ENCODER_NAMES: tuple[str, ...] = ("hubert_base", "contentvec")


def _aliases(name: str) -> tuple[str, ...]:
    """``name`` first, then the other names of the same weights."""
    if name not in ENCODER_NAMES:
        raise unknown_choice("unknown_model", "content encoder", name, ENCODER_NAMES)
    return (name, *(n for n in ENCODER_NAMES if n != name))


def add_local(name: str, path: str | os.PathLike[str], *, settings: Settings | None = None) -> Path:
    """Check and copy the user's own content encoder (``hubert_base`` or ``contentvec``: a fairseq ``.pt``
    or a Hugging Face folder) into the model cache; returns the copy. Either name serves models trained on
    either (:data:`ENCODER_NAMES`). See :func:`autovoice.models.local.add_local`.

    Raises
    ------
    ParameterError
        ``unknown_model`` for another name; what :func:`load_content_encoder` raises
        (``untrusted_checkpoint``, ``invalid_checkpoint``, ...).
    NotFoundError
        ``file_not_found``.
    """
    from autovoice.models.local import add_local as _add

    if name not in ENCODER_NAMES:
        raise unknown_choice("unknown_model", "content encoder", name, ENCODER_NAMES)
    return _add(name, path, check=load_content_encoder, settings=settings)


def _registry_source(name: str, settings: Settings | None) -> Path:
    from autovoice.models.weights import ensure_weights

    if name == "contentvec":
        ensure_weights("contentvec-config", settings=settings)
    return ensure_weights(name, settings=settings)


def encoder_present(name: str, *, settings: Settings | None = None) -> bool:
    """Whether content encoder ``name`` (under either of its names) is installed: the user's copy or the
    registry's file. Nothing is downloaded or hashed beyond a user's copy's check."""
    from autovoice.models.local import local_source
    from autovoice.models.weights import weights_present

    names = _aliases(name)
    return any(local_source(n, settings=settings) is not None for n in names) or any(
        weights_present(n, settings=settings) for n in names
    )


def encoder_source(name: str, *, settings: Settings | None = None) -> Path:
    """The file or folder to load content encoder ``name`` from: the user's copy under either name, else the
    registry's file under either name (the asked name first; downloaded only when downloads are allowed).
    ``model_unavailable`` says how to get it."""
    from autovoice.models.local import local_source, not_installed
    from autovoice.models.weights import weights_present

    names = _aliases(name)
    for n in names:
        local = local_source(n, settings=settings)
        if local is not None:
            return local
    present = [n for n in names if weights_present(n, settings=settings)]
    try:
        return _registry_source(present[0] if present else name, settings)
    except ModelUnavailableError as exc:
        if exc.code != "model_unavailable":
            raise
        raise not_installed(name, needed_by="This model") from None


def load_encoder(name: str, device: str = "cpu", *, settings: Settings | None = None) -> ContentEncoder:
    """Content encoder ``name`` on ``device``, loaded once per process (in the model cache; one entry for
    both names of the same file)."""
    from autovoice.models.cache import CACHE

    src = encoder_source(name, settings=settings)

    def factory() -> ContentEncoder:
        if src.is_file() and src.name == "pytorch_model.bin" and not (src.parent / "config.json").is_file():
            from autovoice.models.weights import weights_path

            return load_hf_files(weights_path("contentvec-config", settings), src).to(device)
        return load_content_encoder(src).to(device)

    return CACHE.get(f"encoder:{src}", device, factory)
