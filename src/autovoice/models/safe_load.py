"""Safe reading of the model files users bring: checkpoints without running their pickles, JSON configs,
size caps.

A ``.pth`` from the internet is a pickle, and unpickling can run code. Every checkpoint AutoVoice reads
from a user goes through :func:`load_checkpoint`: ``torch.load(weights_only=True)`` (torch's restricted
unpickler: tensors, storages and plain containers only) with an explicit, empty-by-default allow-list of
extra globals (:data:`ALLOWED_GLOBALS`, plus what one call adds, e.g. :func:`numpy_array_globals`), after
a size cap (:func:`check_size`). A pickle that names anything else is refused with
``untrusted_checkpoint`` and nothing in it runs; a file that is not a checkpoint at all (or is truncated)
is ``invalid_checkpoint``.

This module is the bottom layer: it imports nothing of AutoVoice but :mod:`autovoice.errors`, so the
content encoders (:mod:`autovoice.models.hubert`), RMVPE (:mod:`autovoice.analysis.rmvpe`) and the trained
engines all read their files through it.
"""

from __future__ import annotations

import json
import pickle  # nosec B403 # only for pickle.UnpicklingError; loads use torch.load(weights_only=True)
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autovoice.errors import NotFoundError, ParameterError, PayloadTooLargeError

#: Largest accepted checkpoint. Real RVC models are ~55 MB (fp16), so-vits-svc ``G_*.pth`` with their
#: optimiser state ~500-700 MB.
MAX_CHECKPOINT_BYTES = 1 << 30
#: Largest accepted so-vits ``config.json``.
MAX_CONFIG_BYTES = 1 << 20

#: Globals a checkpoint may name beyond what ``weights_only`` allows by itself (tensors, storages, dicts,
#: lists, tuples, sets, numbers, strings). Both real layouts need nothing more: RVC's top level is an
#: ``OrderedDict`` (already allowed by torch; listed to say so), so-vits-svc's optimiser state is plain.
ALLOWED_GLOBALS: tuple[Any, ...] = (OrderedDict,)


def check_size(path: Path, max_bytes: int, what: str) -> int:
    """``path``'s size in bytes; ``file_not_found`` when it is missing or not a file, ``file_too_large``
    over ``max_bytes`` (checked before anything reads it). ``what`` names the file in messages."""
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
    check_size(p, max_bytes, "Checkpoint")
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
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        KeyError,
        IndexError,
        struct.error,  # a legacy (non-zip) file cut short: torch reads its header with struct
        TypeError,
        AttributeError,
    ) as exc:
        raise _invalid(p, str(exc) or type(exc).__name__) from None
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
    check_size(p, MAX_CONFIG_BYTES, "Config")
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


def tensor_shape(sd: Mapping[str, Any], key: str, name: str) -> tuple[int, ...]:
    """The shape of tensor ``key`` of state dict ``sd``; ``invalid_checkpoint`` (naming file ``name``) when
    there is no such tensor."""
    import torch

    t = sd.get(key)
    if not isinstance(t, torch.Tensor):
        raise ParameterError(
            "invalid_checkpoint",
            f"{name} has no '{key}' tensor: not a model of the expected kind.",
            {"path": name, "missing": key},
        )
    return tuple(t.shape)


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
