"""Source separation: split a song into a vocal stem and its accompaniment.

Methods (:data:`Separation`):

``demucs``
    Hybrid Transformer Demucs (``htdemucs``, 4 sources at 44.1 kHz stereo). The vocal source is the vocal
    stem; drums, bass and other are summed into the accompaniment. Weights come from the model cache
    (:mod:`autovoice.models.weights`) or a checkpoint path; they are downloaded only when allowed.
``none``
    The input already is a vocal: it is returned as the vocal stem, with no accompaniment.
``auto``
    ``demucs`` when its weights are in the cache (or may be downloaded); otherwise a clear error, never
    a silent pass-through of a full mix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from autovoice.config import Settings, get_settings
from autovoice.errors import ModelUnavailableError, ParameterError
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    import torch

Separation = Literal["auto", "demucs", "none"]
SEPARATION_METHODS: tuple[str, ...] = get_args(Separation)

__all__ = ["SEPARATION_METHODS", "Separation", "Stems", "separate"]


@dataclass(frozen=True)
class Stems:
    """The result of :func:`separate`.

    Attributes
    ----------
    vocals
        float32 vocal stem, same shape as the input: ``(channels, samples)`` or ``(samples,)``.
    accompaniment
        float32 sum of all other sources, same shape as ``vocals``; ``None`` when the input was taken
        to be a vocal (``method="none"``).
    sr
        Sample rate of both stems in Hz (the input's).
    method
        The method that produced the stems (``auto`` resolves to ``demucs``).
    """

    vocals: np.ndarray
    accompaniment: np.ndarray | None
    sr: int
    method: Literal["demucs", "none"] = "none"


def separate(
    y: np.ndarray,
    *,
    sr: int,
    method: Separation = "auto",
    settings: Settings | None = None,
    device: str | None = None,
    progress: ProgressCallback = no_progress,
    model: str | os.PathLike[str] | torch.nn.Module | None = None,
) -> Stems:
    """Split ``y`` into a vocal stem and its accompaniment.

    Parameters
    ----------
    y
        Float audio, ``(samples,)`` or ``(channels, samples)`` with 1 or 2 channels, any sample rate.
    sr
        Sample rate of ``y`` in Hz.
    method
        One of :data:`SEPARATION_METHODS`.
    settings
        Settings (model cache, ``allow_downloads``, device); default :func:`get_settings`.
    device
        Torch device (``"cpu"``, ``"cuda:0"``); default ``settings.device`` resolved.
    progress
        ``progress(fraction, stage)``, fraction in 0..1.
    model
        For ``demucs``/``auto``: a demucs checkpoint path or an already loaded demucs model to use instead
        of the registry's ``htdemucs``.

    Returns
    -------
    Stems
        Stems at ``sr`` with the input's shape and exact length.

    Raises
    ------
    ParameterError
        ``invalid_parameter`` for an unknown ``method`` or a bad ``sr``.
    AudioError
        ``invalid_audio_shape``, ``audio_empty``, ``audio_invalid_samples`` or ``too_many_channels``.
    ModelUnavailableError
        ``separation_unavailable`` (``auto`` with no model), ``model_unavailable`` (``demucs`` with no
        weights), ``weights_corrupt`` or ``weights_unsupported``.
    """
    if method not in SEPARATION_METHODS:
        raise ParameterError(
            "invalid_parameter",
            f"Unknown separation method '{method}'. Valid methods: {', '.join(SEPARATION_METHODS)}.",
            {"method": method, "valid": list(SEPARATION_METHODS)},
        )
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise ParameterError(
            "invalid_parameter", f"sr must be a positive integer in Hz, got {sr!r}.", {"sr": repr(sr)}
        )
    y = _valid(y)
    if method == "none":
        progress(1.0, "separate")
        return Stems(vocals=y, accompaniment=None, sr=int(sr), method="none")

    s = settings or get_settings()
    if method == "auto" and model is None:
        _require_separation_model(s)

    from autovoice.models.devices import resolve_device
    from autovoice.separation import demucs_backend

    dev = resolve_device(device or s.device)
    stereo = y if y.ndim == 2 else y[None, :]
    vocals, accomp = demucs_backend.run(
        stereo, sr=int(sr), settings=s, device=dev, progress=progress, model=model
    )
    if y.ndim == 1:
        vocals, accomp = vocals[0], accomp[0]
    progress(1.0, "separate")
    return Stems(vocals=vocals, accompaniment=accomp, sr=int(sr), method="demucs")


def _valid(y: np.ndarray) -> np.ndarray:
    from autovoice.audio.validate import check_samples

    return check_samples(y)


def _require_separation_model(s: Settings) -> None:
    """For ``auto``: succeed when the htdemucs weights are local or may be downloaded."""
    from autovoice.models.weights import get_spec, weights_path, weights_present

    if weights_present("htdemucs", settings=s) or s.allow_downloads:
        return
    spec, path = get_spec("htdemucs"), weights_path("htdemucs", s)
    raise ModelUnavailableError(
        "separation_unavailable",
        "No separation model is available: the htdemucs weights are not in the model cache and "
        "downloads are off. If the input is already a vocal stem, pass it with `--separation none` "
        "(plus `--accompaniment FILE` if you have the backing track). To separate full songs, allow the "
        "download (AUTOVOICE_ALLOW_DOWNLOADS=1 or `autovoice models download htdemucs`), or place "
        f"{spec.filename} from {spec.url} at {path}.",
        {"name": spec.name, "path": str(path), "url": spec.url},
    )
