"""Retrieval files of trained models: FAISS indexes (RVC's ``.index``, so-vits feature indexes) and
so-vits-svc's k-means cluster models, read safely (FAISS's own binary reader; ``weights_only`` pickles).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from autovoice.errors import ParameterError, package_missing
from autovoice.models.safe_load import MAX_CHECKPOINT_BYTES, check_size, load_checkpoint, numpy_array_globals

if TYPE_CHECKING:
    import torch


def read_index_shape(path: str | Path) -> tuple[int, int]:
    """``(dimension, number of vectors)`` of a FAISS index file; ``invalid_index`` when unreadable."""
    index = read_index(path)
    return int(index.d), int(index.ntotal)


def read_index(path: str | Path, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Any:
    """A FAISS index read from ``path`` (FAISS's own binary format: no pickle); ``invalid_index`` if bad."""
    p = Path(path)
    check_size(p, max_bytes, "Index")
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise package_missing("faiss-cpu", "RVC retrieval") from exc
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
