"""Demucs (Hybrid Transformer Demucs, ``htdemucs``) vocal/accompaniment separation.

Loading
    :func:`load_demucs` reads a demucs *package* (the ``.th`` files demucs publishes: a dict with the model
    ``klass``, its ``args``/``kwargs`` and ``state``) and builds the model with demucs' own
    ``demucs.states.load_model``. Nothing here downloads: the weights come from
    :func:`autovoice.models.weights.ensure_weights` or from a path the caller gives.

Trust model
    A demucs package is a pickle that names the model class, so it cannot be read with a bare
    ``torch.load(weights_only=True)``. We still load it that way, with an allow-list of exactly the demucs
    model classes, :class:`fractions.Fraction` (HTDemucs stores its segment length as a fraction) and
    numeric numpy scalars (found in stored training configs): a file that references anything else is
    refused instead of executed. Registry files are
    additionally sha256-checked before loading, and a file named like demucs' own
    (``<signature>-<8 hex sha256 prefix>.th``) is checked against that prefix, as ``demucs.repo`` does.

Running
    :func:`separate_demucs` feeds the song to ``demucs.apply.apply_model`` in blocks of
    :data:`BLOCK_SECONDS` with a :data:`CROSSFADE_SECONDS` linear cross-fade; inside a block demucs runs
    the network on segments of the model's own length (7.8 s for htdemucs) with 25 % overlap. Network
    memory is bounded by the segment and the per-call buffers by the block; only the two output stems
    grow with the song.
"""

from __future__ import annotations

import logging
import os
import pickle  # nosec B403 # only for pickle.UnpicklingError; see the module docstring
import re
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.config import Settings
from autovoice.errors import AudioError, ModelUnavailableError, ParameterError
from autovoice.models.cache import CACHE
from autovoice.models.devices import is_cuda_oom
from autovoice.models.weights import ensure_weights, verify_file
from autovoice.progress import ProgressCallback, no_progress, sub_progress

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Registry name of the default model.
DEFAULT_MODEL = "htdemucs"
#: Source name that is the vocal stem; every other source is summed into the accompaniment.
VOCALS = "vocals"
#: Length of one ``apply_model`` call in seconds (bounds its 4-stem output buffer).
BLOCK_SECONDS = 60.0
#: Cross-fade between consecutive blocks, in seconds.
CROSSFADE_SECONDS = 1.0
#: Overlap between the model's segments inside a block (demucs' default).
OVERLAP = 0.25
#: No random time shifts: deterministic output at 1x cost (demucs' CLI default is 1 shift).
SHIFTS = 0
_DEMUCS_FILE = re.compile(r"^(?P<sig>[0-9a-f]+)-(?P<sha>[0-9a-f]{8,64})\.th$")
_PACKAGE_KEYS = ("klass", "args", "kwargs", "state")


def _model_classes() -> tuple[type, ...]:
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return (Demucs, HDemucs, HTDemucs)


def _allowed_globals() -> list[Any]:
    """What a demucs package may reference: the model classes, fractions and plain numpy scalars.

    Published packages hold the model class, its constructor arguments (``Fraction`` segment lengths)
    and the training config, which can contain numpy scalars (``numpy.core.multiarray.scalar`` with its
    dtype). Numeric dtypes only: no object arrays, no callables.
    """
    import importlib

    try:
        scalar = importlib.import_module("numpy._core.multiarray").scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        scalar = importlib.import_module("numpy.core.multiarray").scalar
    ints = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
    numeric: tuple[type, ...] = (np.bool_, *ints, np.float16, np.float32, np.float64)
    return [
        *_model_classes(),
        Fraction,
        np.dtype,
        *(type(np.dtype(t)) for t in numeric),
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
    ]


def _import_demucs() -> None:
    try:
        import demucs.apply  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailableError(
            "model_unavailable",
            f"Demucs separation needs the 'demucs' package, which cannot be imported ({exc}). Run "
            "`make install` (or `pip install demucs`), or use another separation (spleeter; none for a "
            "vocal).",
            {"package": "demucs"},
        ) from exc


def load_checkpoint(path: str | os.PathLike[str], *, check_name: bool = True) -> torch.nn.Module:
    """Build a demucs model from a package file, reading it with ``weights_only=True``.

    Parameters
    ----------
    path
        A demucs ``.th`` package (``torch.save`` of ``{"klass", "args", "kwargs", "state", ...}``, as
        written by ``demucs.states.serialize_model``). Files named ``<sig>-<sha256 prefix>.th`` are
        checked against that prefix first.
    check_name
        Whether to do that file-name check; ``False`` when the caller has verified the file already
        (registry files are checked against their full sha256 by
        :func:`~autovoice.models.weights.ensure_weights`).

    Returns
    -------
    torch.nn.Module
        The model on the CPU, in eval mode.

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when the file is missing, ``weights_corrupt`` when its name's hash prefix
        does not match, ``weights_unsupported`` when it is not a demucs package of an allowed class.
    """
    import torch
    from demucs.states import load_model

    p = Path(path)
    if not p.is_file():
        raise ModelUnavailableError(
            "model_unavailable", f"Demucs checkpoint {p} does not exist.", {"path": str(p)}
        )
    named = _DEMUCS_FILE.match(p.name)
    if check_name and named:
        verify_file(p, named["sha"])
    classes = _model_classes()
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            package = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ModelUnavailableError(
            "weights_unsupported",
            f"{p} is not a demucs model package that AutoVoice can load safely ({exc}). Only packages of "
            f"{', '.join(c.__name__ for c in classes)} saved by demucs are accepted.",
            {"path": str(p)},
        ) from exc
    if not (isinstance(package, dict) and all(k in package for k in _PACKAGE_KEYS)):
        raise ModelUnavailableError(
            "weights_unsupported",
            f"{p} holds no demucs model package (expected keys {', '.join(_PACKAGE_KEYS)}).",
            {"path": str(p)},
        )
    if package["klass"] not in classes:
        raise ModelUnavailableError(
            "weights_unsupported", f"{p} holds a {package['klass']!r}, not a demucs model.", {"path": str(p)}
        )
    with warnings.catch_warnings():
        # demucs warns when it drops constructor arguments that newer versions no longer take.
        warnings.simplefilter("ignore")
        model: torch.nn.Module = load_model(package)
    return model.eval()


def _check_model(model: Any) -> None:
    missing = [a for a in ("samplerate", "audio_channels", "sources") if not hasattr(model, a)]
    if missing or VOCALS not in model.sources:
        raise ParameterError(
            "invalid_parameter",
            f"The separation model must be a demucs model with a '{VOCALS}' source; got "
            f"{type(model).__name__} (missing: {', '.join(missing) or VOCALS}).",
            {"model": type(model).__name__},
        )


def load_demucs(
    source: str | os.PathLike[str] | None = None,
    *,
    settings: Settings,
    device: str,
    progress: ProgressCallback = no_progress,
) -> Any:
    """A demucs model on ``device``, loaded once per process (:data:`autovoice.models.CACHE`).

    Parameters
    ----------
    source
        Path of a demucs package, or ``None`` for the registry's ``htdemucs`` weights (from the cache,
        downloaded only when ``settings.allow_downloads`` is on).
    settings
        Settings (cache dir, downloads).
    device
        Torch device string (``"cpu"``, ``"cuda:0"``).
    progress
        Receives download progress, if a download happens.

    Returns
    -------
    demucs.htdemucs.HTDemucs
        Or another demucs model class, in eval mode.
    """
    _import_demucs()
    if source is None:
        key = f"demucs:{DEFAULT_MODEL}"
        # Check (or download) the weights outside the cache's lock, and only when not loaded yet:
        # hashing 84 MB on every call, or holding every model load behind a download, is waste.
        verified: list[Path] = []
        if f"{key}@{device}" not in CACHE.loaded():
            verified.append(ensure_weights(DEFAULT_MODEL, settings=settings, progress=progress))

        def factory() -> Any:
            path = verified[0] if verified else ensure_weights(DEFAULT_MODEL, settings=settings)
            # ensure_weights() checked the file against the registry's full sha256.
            return load_checkpoint(path, check_name=False)
    else:
        path = Path(source).expanduser().resolve()
        key = f"demucs:{path}"

        def factory() -> Any:
            return load_checkpoint(path)

    def on_device() -> Any:
        model = factory().to(device)
        _check_model(model)
        return model

    return CACHE.get(key, device, on_device)


def separate_demucs(
    y: np.ndarray,
    *,
    model: Any,
    device: str,
    progress: ProgressCallback = no_progress,
    cpu_fallback: Callable[[], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a mixture at the model's rate and channel count into vocals and accompaniment.

    Parameters
    ----------
    y
        ``(model.audio_channels, samples)`` float32 mixture at ``model.samplerate``.
    model
        A demucs model (see :func:`load_demucs`).
    device
        Torch device to run on; the result is gathered on the CPU.
    progress
        ``progress(fraction, "separate")`` after every model segment.
    cpu_fallback
        Returns a CPU copy of the model; used once if ``device`` runs out of CUDA memory.

    Returns
    -------
    vocals, accompaniment
        Two float32 arrays shaped like ``y``; the accompaniment is the sum of all non-vocal sources.
    """
    try:
        return _run_blocks(y, model=model, device=device, progress=progress)
    except Exception as exc:
        if cpu_fallback is None or device == "cpu" or not is_cuda_oom(exc):
            raise
        log.warning("CUDA ran out of memory during separation; retrying on the CPU")
        import torch

        torch.cuda.empty_cache()
        return _run_blocks(y, model=cpu_fallback(), device="cpu", progress=progress)


def _run_blocks(
    y: np.ndarray, *, model: Any, device: str, progress: ProgressCallback
) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from demucs.apply import TensorChunk, apply_model

    sr = int(model.samplerate)
    vocal_index = list(model.sources).index(VOCALS)
    n = y.shape[-1]
    # Global level normalisation, as demucs' own separate/api code does before apply_model. Only the
    # scale: demucs also removes the mean and adds it back to *every* source, which would put the DC
    # offset into the accompaniment three times; the network itself normalises each segment anyway.
    std = float(np.std(y.mean(axis=0))) + 1e-8
    mix = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32) / np.float32(std))

    block = max(int(BLOCK_SECONDS * sr), 1)
    fade = min(int(CROSSFADE_SECONDS * sr), block // 2)
    vocals = np.zeros(y.shape, dtype=np.float32)
    accomp = np.zeros(y.shape, dtype=np.float32)
    step = block - fade
    segment = int(float(getattr(model, "segment", 0) or 0) * sr)
    starts = list(range(0, max(n - fade, 1), step))
    for i, start in enumerate(starts):
        length = min(block, n - start)

        def on_segment(info: dict[str, Any], i: int = i, length: int = length) -> None:
            if info.get("state") == "end":
                reached = min(int(info.get("segment_offset", 0)) + segment, length)
                progress((i + reached / length) / len(starts), "separate")

        # A TensorChunk of the whole track (not a slice) lets demucs pad the block's edge segments
        # with the real neighbouring audio instead of zeros.
        chunk = TensorChunk(mix[None], start, length)
        est = apply_model(
            model,
            chunk,
            shifts=SHIFTS,
            split=True,
            overlap=OVERLAP,
            device=device,
            progress=False,
            callback=on_segment,
        )[0]  # (sources, channels, length) on the CPU
        est = est * std
        voc = est[vocal_index].numpy()
        acc = (est.sum(0) - est[vocal_index]).numpy()
        w = np.ones(length, dtype=np.float32)
        if i > 0:
            w[:fade] = (np.arange(fade, dtype=np.float32) + 0.5) / fade
        if i < len(starts) - 1:
            w[length - fade :] = 1.0 - (np.arange(fade, dtype=np.float32) + 0.5) / fade
        vocals[:, start : start + length] += w * voc
        accomp[:, start : start + length] += w * acc
        del est
    progress(1.0, "separate")
    return vocals, accomp


def run(
    y: np.ndarray,
    *,
    sr: int,
    settings: Settings,
    device: str,
    progress: ProgressCallback,
    model: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Separate ``(channels, samples)`` audio at ``sr``; return vocals and accompaniment in the same layout.

    Resamples to the model's rate and channel count (mono is duplicated to stereo, then averaged back),
    and restores the input's rate, channels and exact length.
    """
    from autovoice.audio import resample

    load_progress = sub_progress(progress, 0.0, 0.05)
    if model is None or isinstance(model, (str, os.PathLike)):
        net = load_demucs(model, settings=settings, device=device, progress=load_progress)

        def cpu_copy() -> Any:
            return load_demucs(model, settings=settings, device="cpu")

        fallback: Callable[[], Any] | None = cpu_copy
    else:
        _import_demucs()
        _check_model(model)
        net, fallback = model, None
    load_progress(1.0, "load model")

    channels, n = y.shape
    model_channels, model_sr = int(net.audio_channels), int(net.samplerate)
    if channels not in (1, model_channels):
        raise AudioError(
            "too_many_channels",
            f"The audio has {channels} channels; the separation model takes mono or {model_channels}. "
            "Downmix it first.",
            {"channels": channels, "model_channels": model_channels},
        )
    x = resample(y, orig_sr=sr, target_sr=model_sr)
    if channels != model_channels:
        x = np.repeat(x, model_channels, axis=0)
    vocals, accomp = separate_demucs(
        x, model=net, device=device, progress=sub_progress(progress, 0.05, 0.98), cpu_fallback=fallback
    )
    del x
    return _restore(vocals, channels=channels, sr=model_sr, target_sr=sr, n=n), _restore(
        accomp, channels=channels, sr=model_sr, target_sr=sr, n=n
    )


def _restore(z: np.ndarray, *, channels: int, sr: int, target_sr: int, n: int) -> np.ndarray:
    from autovoice.audio import resample

    if channels != z.shape[0]:
        z = z.mean(axis=0, keepdims=True, dtype=np.float32)
    z = resample(z, orig_sr=sr, target_sr=target_sr)
    if z.shape[-1] < n:
        z = np.pad(z, ((0, 0), (0, n - z.shape[-1])))
    return np.ascontiguousarray(z[:, :n], dtype=np.float32)
