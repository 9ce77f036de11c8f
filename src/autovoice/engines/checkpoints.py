"""Trained voice models users bring (RVC v1/v2, Applio, so-vits-svc 4.x): what their files are.

:func:`inspect_model` reads a model's files (safely: :mod:`autovoice.models.safe_load`), checks that they
belong together (shapes against the so-vits ``config.json``, the index's dimension against the model's
content features) and returns a :class:`TrainedModelInfo`, the description a profile stores with the model.
The layouts are read next to their engines (:mod:`autovoice.engines.rvc.checkpoint`,
:mod:`autovoice.engines.sovits.checkpoint`); index and cluster files in :mod:`autovoice.engines.indexes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autovoice.engines.indexes import read_index_shape
from autovoice.engines.model_info import mismatch
from autovoice.engines.rvc.checkpoint import inspect_rvc
from autovoice.engines.sovits.checkpoint import inspect_cluster, inspect_sovits
from autovoice.errors import ParameterError
from autovoice.models.safe_load import MAX_CHECKPOINT_BYTES, load_checkpoint, load_config
from autovoice.profiles.profile import ModelKind, TrainedModelInfo

__all__ = ["inspect_model"]


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
        info = inspect_rvc(ckpt, p.name)
    elif kind == "sovits":
        if config is None:
            raise ParameterError(
                "model_config_required",
                f"{p.name} is a so-vits-svc model; its shape is in the config.json saved next to it "
                "during training. Give that file too.",
                {"path": p.name},
            )
        info = inspect_sovits(ckpt, load_config(config), p.name)
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
            raise mismatch("the index dimension", info.content_dim, dim, {"index": Path(index).name})
        updates.update(index_dim=dim, index_size=size)
    if cluster is not None:
        updates["cluster"] = inspect_cluster(Path(cluster), info, max_bytes)
    if updates:
        info = TrainedModelInfo(**{**_fields(info), **updates})
    return info


def _fields(info: TrainedModelInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in TrainedModelInfo.__dataclass_fields__}
