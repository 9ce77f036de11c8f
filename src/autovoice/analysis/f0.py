"""Fundamental-frequency (F0) tracking.

The methods live in :data:`F0_METHODS`, a :class:`~autovoice.registry.Registry` whose choices point at
public estimators with one signature (``f0_<name>(y, *, sr, n_frames, hop_s, fmin, fmax, device)``):

``fcpe`` (:func:`f0_fcpe`)
    FCPE (``torchfcpe``), a fast neural estimator with bundled weights; robust on singing and noisy
    speech. The default.
``world`` (:func:`f0_world`)
    WORLD's Harvest (``pyworld``), a classic DSP estimator; no neural network. It needs a harmonic
    signal (a voice): a bare sine wave is reported unvoiced.
``crepe`` / ``crepe-tiny`` (:func:`f0_crepe`, :func:`f0_crepe_tiny`)
    CREPE (``torchcrepe``'s bundled "full" / "tiny" weights) with Viterbi decoding and its periodicity
    as voicing. The full model has the strictest voicing and is by far the slowest on a CPU.

:func:`estimate_f0` is the entry point: it validates, runs the chosen estimator and cleans the voicing
(search range, silence gate, blips). Every method gives an :class:`F0Track` on a fixed 10 ms grid (by
default) with 0 Hz marking unvoiced frames.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast, get_args

import numpy as np

from autovoice.audio import frame_rms_db, resample, to_mono
from autovoice.errors import ParameterError
from autovoice.registry import Choice, Registry

#: The 10 ms frame grid of AutoVoice: F0 tracks, profile analysis, pitch plans and the engines' frames.
FRAME_HOP_S = 0.01

F0Method = Literal["fcpe", "world", "crepe", "crepe-tiny", "rmvpe"]
F0_METHODS = Registry(
    "F0 method",
    "invalid_f0_method",
    [
        Choice(
            "fcpe",
            "Neural (FCPE): the fastest, robust on singing and noisy speech; the default on CPU and GPU.",
            "autovoice.analysis.f0:f0_fcpe",
        ),
        Choice(
            "world",
            "DSP (WORLD Harvest), no model: clean solo voice without a neural net; ~5x fcpe's time.",
            "autovoice.analysis.f0:f0_world",
        ),
        Choice(
            "crepe",
            "Neural (CREPE full): the strictest voicing; ~60x fcpe's time on a CPU, so use it on a GPU.",
            "autovoice.analysis.f0:f0_crepe",
        ),
        Choice(
            "crepe-tiny",
            "Neural (CREPE tiny): CREPE on a CPU at world's cost or less; looser voicing than crepe.",
            "autovoice.analysis.f0:f0_crepe_tiny",
        ),
        Choice(
            "rmvpe",
            "Neural (RMVPE), as RVC users know it; needs your rmvpe.pt (`autovoice models add rmvpe PATH`).",
            "autovoice.analysis.rmvpe:f0_rmvpe",
        ),
    ],
)
#: The method names, in registry order (``F0_METHODS`` iterates over :class:`~autovoice.registry.Choice` s).
F0_METHOD_NAMES: tuple[str, ...] = get_args(F0Method)
assert F0_METHODS.names == F0_METHOD_NAMES

#: Default search range: covers bass singing to soprano whistle-free range.
DEFAULT_FMIN = 50.0
DEFAULT_FMAX = 1100.0
_ANALYSIS_SR = 16_000
_NATIVE_HOP = 160  # samples at 16 kHz = 10 ms, the frame period of fcpe and crepe
_WINDOW_S = 30.0  # fcpe attends over its whole input; bounded windows keep memory flat for all methods
_PAD_S = 1.0
#: FCPE voicing confidence threshold. The package default (0.006) reports white noise as 90 % voiced;
#: 0.02 reports it unvoiced while keeping ~94 % of the voiced frames of clean speech.
_FCPE_THRESHOLD = 0.02
#: CREPE periodicity thresholds (the model's output at the decoded bin). Measured on 90 s (tiny) / 30 s
#: (full) of white noise at -6, -26 and -46 dBFS, on digital silence, and on 40 s of clean LibriSpeech
#: (10 speakers) against the frames Harvest and FCPE both call voiced within 50 cents. Full: noise never
#: exceeds 0.06, silence gives 0.14, and 0.3 keeps 94 % of those frames. Tiny: noise reaches 0.56 (0.4:
#: 0.03 % of noise frames left after the 30 ms run filter; 0.3: 0.4 %), silence 0.01, and 0.4 keeps 90 %.
_CREPE_THRESHOLD = {"full": 0.3, "tiny": 0.4}
#: Frames per forward pass: on a CPU, batches past which speed stopped improving on 2 cores (the full model
#: holds ~2.3 MB per frame in flight); on a GPU, large batches.
_CREPE_BATCH_CPU = {"full": 64, "tiny": 256}
_CREPE_BATCH_GPU = 1024
_CREPE_BINS = 360
_CREPE_CENTS_PER_BIN = 20.0
_CREPE_CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0
#: Voiced runs shorter than this are estimator blips (clicks, breaths), not notes.
_MIN_VOICED_RUN_S = 0.03


class F0Estimator(Protocol):
    """The signature every :data:`F0_METHODS` target has."""

    def __call__(
        self, y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class F0Track:
    """An F0 contour on a regular frame grid.

    Attributes
    ----------
    f0
        ``(frames,)`` float32 fundamental frequency in Hz; 0 where unvoiced. Frame ``i`` is centred at
        ``i * hop_s`` seconds.
    hop_s
        Frame period in seconds.
    method
        The backend that produced it.
    """

    f0: np.ndarray
    hop_s: float
    method: str

    @property
    def voiced(self) -> np.ndarray:
        """Boolean ``(frames,)`` mask of voiced frames."""
        return self.f0 > 0

    @property
    def times(self) -> np.ndarray:
        """Frame centre times in seconds."""
        return np.arange(len(self.f0)) * self.hop_s

    @property
    def voiced_seconds(self) -> float:
        return float(self.voiced.sum() * self.hop_s)

    def resampled(self, n_frames: int) -> np.ndarray:
        """F0 on a grid of ``n_frames`` spanning the same duration (nearest frame; keeps 0 = unvoiced)."""
        if n_frames == len(self.f0):
            return self.f0.copy()
        idx = np.minimum(
            np.round(np.arange(n_frames) * len(self.f0) / max(n_frames, 1)).astype(int), len(self.f0) - 1
        )
        return np.asarray(self.f0[idx])


def estimate_f0(
    y: np.ndarray,
    *,
    sr: int,
    method: F0Method = "fcpe",
    hop_s: float = FRAME_HOP_S,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
    device: str = "cpu",
    silence_db: float = -50.0,
) -> F0Track:
    """Track the F0 of a monophonic voice.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio (channels are averaged).
    sr
        Sample rate in Hz.
    method
        One of :data:`F0_METHOD_NAMES` (see :data:`F0_METHODS` for what each is good for).
    hop_s
        Output frame period in seconds (0.005..0.05).
    fmin, fmax
        Search range in Hz; frames outside it are reported unvoiced.
    device
        Torch device for the neural methods (``"cpu"``, ``"cuda:0"``); ignored by ``world``.
    silence_db
        Frames whose RMS is this many dB below the loudest frame are unvoiced (avoids pitch in noise).

    Returns
    -------
    F0Track
        ``ceil(duration / hop_s)`` frames.

    Raises
    ------
    ParameterError
        ``invalid_f0_method`` (listing the valid names) or ``invalid_parameter``.
    """
    estimator = cast(F0Estimator, F0_METHODS.get(method).load())
    if not 0.005 <= hop_s <= 0.05:
        raise ParameterError("invalid_parameter", f"hop_s must be within 0.005..0.05 s, got {hop_s}.")
    if not 0 < fmin < fmax:
        raise ParameterError("invalid_parameter", f"Need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}.")
    mono = to_mono(np.asarray(y, dtype=np.float32))
    n_frames = int(np.ceil(len(mono) / sr / hop_s))
    if n_frames == 0:
        return F0Track(f0=np.zeros(0, np.float32), hop_s=hop_s, method=method)
    f0 = estimator(mono, sr=sr, n_frames=n_frames, hop_s=hop_s, fmin=fmin, fmax=fmax, device=device)
    clean_f0(f0, mono, sr=sr, hop_s=hop_s, fmin=fmin, fmax=fmax, silence_db=silence_db)
    return F0Track(f0=f0.astype(np.float32), hop_s=hop_s, method=method)


def clean_f0(
    f0: np.ndarray,
    y: np.ndarray,
    *,
    sr: int,
    hop_s: float,
    fmin: float,
    fmax: float,
    silence_db: float,
) -> np.ndarray:
    """The voicing clean-up :func:`estimate_f0` applies to every estimator's output, in place.

    Frames outside ``fmin..fmax``, frames ``silence_db`` below the loudest frame of ``y`` (mono, at
    ``sr``; ``f0``'s frame ``i`` is centred at ``i * hop_s`` s) and voiced runs shorter than 30 ms become
    unvoiced (0 Hz). Returns ``f0``.
    """
    n_frames = len(f0)
    f0[(f0 < fmin) | (f0 > fmax)] = 0.0
    level = frame_rms_db(np.pad(y, (int(hop_s * sr) // 2, 0)), sr=sr, frame_s=hop_s)
    if len(level):
        level = np.pad(level, (0, max(0, n_frames - len(level))), constant_values=-200.0)[:n_frames]
        f0[level < level.max() + silence_db] = 0.0
    _drop_short_runs(f0, min_frames=max(2, int(round(_MIN_VOICED_RUN_S / hop_s))))
    return f0


# The estimators. Each takes mono float audio and returns a float32 ``(n_frames,)`` F0 in Hz on the grid
# ``i * hop_s`` (0 = unvoiced) without the clean-up :func:`estimate_f0` adds; they trust their arguments,
# which :func:`estimate_f0` has validated.


def f0_fcpe(
    y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
) -> np.ndarray:
    """F0 by FCPE (``torchfcpe``'s bundled model) in 30 s windows; see :func:`estimate_f0`.

    Parameters
    ----------
    y
        ``(samples,)`` mono float audio at ``sr`` Hz.
    sr
        Sample rate in Hz.
    n_frames
        Output frames (frame ``i`` is centred at ``i * hop_s`` s).
    hop_s
        Output frame period in seconds.
    fmin, fmax
        Search range in Hz (FCPE uses ``fmin``; :func:`estimate_f0` applies ``fmax``).
    device
        Torch device.

    Returns
    -------
    np.ndarray
        ``(n_frames,)`` float32 F0 in Hz, 0 where unvoiced.
    """
    from autovoice.models.cache import load_fcpe

    model = load_fcpe(device)
    x = fcpe_input(y, sr=sr)
    return _regrid(
        _windowed(x, lambda seg: fcpe_frames(model, seg, fmin=fmin)),
        native_hop_s=_NATIVE_HOP / _ANALYSIS_SR,
        hop_s=hop_s,
        n_frames=n_frames,
    )


def fcpe_input(y: np.ndarray, *, sr: int) -> np.ndarray:
    """``y`` as FCPE takes it: resampled to 16 kHz and clipped to [-1, 1] (FCPE prints a complaint to
    stdout for samples outside it, and lossy decodes overshoot)."""
    return np.asarray(np.clip(resample(y, orig_sr=sr, target_sr=_ANALYSIS_SR), -1.0, 1.0))


def fcpe_frames(model: Any, x: np.ndarray, *, fmin: float) -> np.ndarray:
    """F0 (Hz, 0 = unvoiced) of :func:`fcpe_input` audio ``x`` by a loaded FCPE ``model`` in one pass.

    Returns ``(1 + len(x) // 160,)`` float32, frame ``i`` centred at sample ``160 * i``; frames whose
    confidence is under the measured voicing threshold are 0. :func:`f0_fcpe` runs it on bounded
    windows; the live tracker runs it on each block's window with its own copy of the model.
    """
    import torch

    with torch.no_grad():
        out = model.infer(
            torch.from_numpy(np.ascontiguousarray(x)).float()[None, :, None],
            sr=_ANALYSIS_SR,
            decoder_mode="local_argmax",
            threshold=_FCPE_THRESHOLD,
            f0_min=fmin,
            interp_uv=False,
        )
    return np.asarray(out.squeeze().cpu().numpy(), dtype=np.float32).reshape(-1)


def f0_world(
    y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
) -> np.ndarray:
    """F0 by WORLD's Harvest refined by StoneMask (``pyworld``, CPU only); see :func:`estimate_f0`.

    Parameters and return value as :func:`f0_fcpe`; ``device`` is ignored.
    """
    import pyworld

    # Harvest's cost grows with the sample rate; 16 kHz keeps every F0 we search for (< 1.1 kHz)
    # with all the harmonics its voicing test needs. (Harvest expects a harmonic voice: a bare sine
    # is reported unvoiced.)
    x = np.ascontiguousarray(resample(y, orig_sr=sr, target_sr=_ANALYSIS_SR), dtype=np.float64)
    f0, t = pyworld.harvest(x, _ANALYSIS_SR, f0_floor=fmin, f0_ceil=fmax, frame_period=hop_s * 1000)
    f0 = pyworld.stonemask(x, f0, t, _ANALYSIS_SR)
    return _regrid(np.asarray(f0, np.float32), native_hop_s=hop_s, hop_s=hop_s, n_frames=n_frames)


def f0_crepe(
    y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
) -> np.ndarray:
    """F0 by CREPE, ``torchcrepe``'s bundled "full" model, in 30 s windows; see :func:`estimate_f0`.

    Frames of 64 ms every 10 ms at 16 kHz; the pitch path is Viterbi-decoded over the 360 bins (20 cents
    each) within ``fmin..fmax``, refined by a weighted average of the 9 bins around it; frames whose
    periodicity (the model's output at that bin) is below a measured threshold are unvoiced.

    Parameters and return value as :func:`f0_fcpe`.
    """
    return _crepe(
        y, sr=sr, n_frames=n_frames, hop_s=hop_s, fmin=fmin, fmax=fmax, device=device, capacity="full"
    )


def f0_crepe_tiny(
    y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
) -> np.ndarray:
    """F0 by CREPE's "tiny" model (as :func:`f0_crepe`, ~20x less compute); see :func:`estimate_f0`.

    Parameters and return value as :func:`f0_fcpe`.
    """
    return _crepe(
        y, sr=sr, n_frames=n_frames, hop_s=hop_s, fmin=fmin, fmax=fmax, device=device, capacity="tiny"
    )


def _crepe(
    y: np.ndarray,
    *,
    sr: int,
    n_frames: int,
    hop_s: float,
    fmin: float,
    fmax: float,
    device: str,
    capacity: Literal["full", "tiny"],
) -> np.ndarray:
    threshold = _CREPE_THRESHOLD[capacity]

    def window(seg: np.ndarray) -> np.ndarray:
        f0, periodicity = _crepe_window(seg, capacity=capacity, fmin=fmin, fmax=fmax, device=device)
        f0[periodicity < threshold] = 0.0
        return f0

    x = resample(y, orig_sr=sr, target_sr=_ANALYSIS_SR)
    return _regrid(
        _windowed(x, window), native_hop_s=_NATIVE_HOP / _ANALYSIS_SR, hop_s=hop_s, n_frames=n_frames
    )


def _crepe_window(
    x: np.ndarray, *, capacity: Literal["full", "tiny"], fmin: float, fmax: float, device: str
) -> tuple[np.ndarray, np.ndarray]:
    """CREPE's F0 and periodicity of one window of 16 kHz audio, before any voicing decision.

    Parameters
    ----------
    x
        ``(samples,)`` float audio at 16 kHz; keep it short (the work is held in memory).
    capacity
        ``"full"`` or ``"tiny"`` weights.
    fmin, fmax
        Search range in Hz.
    device
        Torch device.

    Returns
    -------
    tuple of np.ndarray
        ``(1 + samples // 160,)`` float32 F0 in Hz and periodicity (0..1), frame ``i`` centred at sample
        ``160 * i``.
    """
    import torch
    import torchcrepe

    from autovoice.models.cache import load_crepe

    model = load_crepe(capacity, device)
    batch = _CREPE_BATCH_GPU if device.startswith("cuda") else _CREPE_BATCH_CPU[capacity]
    audio = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
    outs: list[np.ndarray] = []
    with torch.inference_mode():
        # torchcrepe.preprocess frames and normalises (at 16 kHz it does not resample).
        for frames in torchcrepe.preprocess(audio, _ANALYSIS_SR, _NATIVE_HOP, batch, device, pad=True):
            outs.append(_crepe_forward(model, frames).float().cpu().numpy())
    probs = np.concatenate(outs).T  # (bins, frames), each in 0..1
    return _crepe_decode(probs, fmin=fmin, fmax=fmax)


def _crepe_forward(model: Any, frames: Any) -> Any:
    """``torchcrepe.Crepe.forward`` with 1-d convolutions: the same numbers, ~2x faster on a CPU.

    CREPE's layers are ``(k, 1)`` 2-d convolutions over a width-1 image; PyTorch's CPU kernels run them far
    slower than the equivalent 1-d convolutions ("full" on 2 cores: 70-110 vs 150-260 ms per frame).
    """
    import torch
    from torch.nn import functional

    x = frames[:, None, :]
    for i, pad in enumerate([(254, 254)] + [(31, 32)] * 5, start=1):
        conv, norm = getattr(model, f"conv{i}"), getattr(model, f"conv{i}_BN")
        x = functional.conv1d(
            functional.pad(x, pad), conv.weight.squeeze(-1), conv.bias, stride=conv.stride[0]
        )
        x = functional.batch_norm(
            functional.relu(x),
            norm.running_mean,
            norm.running_var,
            norm.weight,
            norm.bias,
            False,
            0.0,
            norm.eps,
        )
        x = functional.max_pool1d(x, 2, 2)
    return torch.sigmoid(model.classifier(x.permute(0, 2, 1).reshape(-1, model.in_features)))


def _crepe_decode(probs: np.ndarray, *, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi path over CREPE's bins, refined to a local weighted average; ``(f0 Hz, periodicity)``.

    The path is torchcrepe's ``decode.viterbi`` (softmax over the bins, a triangular transition of at
    most 11 bins per frame) without its random dither; the refinement around the path is the original
    CREPE's local average of the 9 nearest bins, which gives sub-bin (< 20 cent) resolution.
    """
    import librosa

    bins = np.arange(_CREPE_BINS)
    cents = _CREPE_CENTS_OFFSET + _CREPE_CENTS_PER_BIN * bins
    lo, hi = (1200 * np.log2(np.array([fmin, fmax]) / 10.0) - _CREPE_CENTS_OFFSET) / _CREPE_CENTS_PER_BIN
    in_range = (bins >= np.floor(lo)) & (bins < np.ceil(hi))  # as torchcrepe.postprocess
    probs = np.where(in_range[:, None], probs, 0.0).astype(np.float32)
    logits = np.where(in_range[:, None], probs, -np.inf)
    obs = np.exp(logits - logits.max(axis=0, keepdims=True))
    obs /= obs.sum(axis=0, keepdims=True)
    path = librosa.sequence.viterbi(obs, _viterbi_transition()).astype(np.int64)
    frames = np.arange(probs.shape[1])
    near = np.clip(path[None, :] + np.arange(-4, 5)[:, None], 0, _CREPE_BINS - 1)  # (9, frames)
    weights = probs[near, frames[None, :]]
    local = (weights * cents[near]).sum(axis=0) / np.maximum(weights.sum(axis=0), 1e-9)
    f0 = (10.0 * 2.0 ** (local / 1200.0)).astype(np.float32)
    return f0, probs[path, frames].astype(np.float32)


@functools.cache
def _viterbi_transition() -> np.ndarray:
    """torchcrepe's transition matrix: a triangle over +-11 bins (220 cents) per 10 ms frame."""
    steps = np.abs(np.arange(_CREPE_BINS)[:, None] - np.arange(_CREPE_BINS)[None, :])
    transition = np.maximum(12 - steps, 0).astype(np.float64)
    return np.asarray(transition / transition.sum(axis=1, keepdims=True))


def _windowed(x: np.ndarray, frames_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run ``frames_of`` over 30 s windows of 16 kHz ``x`` (1 s of context each side), joined.

    ``frames_of(segment)`` returns one value per 10 ms frame, frame ``i`` centred at sample ``160 * i`` of
    the segment; the result has ``1 + len(x) // 160`` frames. Memory stays flat however long ``x`` is.
    """
    win = int(_WINDOW_S * _ANALYSIS_SR) // _NATIVE_HOP * _NATIVE_HOP
    pad = int(_PAD_S * _ANALYSIS_SR) // _NATIVE_HOP * _NATIVE_HOP
    parts: list[np.ndarray] = []
    for start in range(0, max(len(x), 1), win):
        lo = max(0, start - pad)
        f = frames_of(x[lo : start + win + pad])
        skip = (start - lo) // _NATIVE_HOP
        keep = min(win, len(x) - start) // _NATIVE_HOP + (1 if start + win >= len(x) else 0)
        parts.append(f[skip : skip + keep])
    return np.concatenate(parts) if parts else np.zeros(1, np.float32)


def _regrid(f0: np.ndarray, *, native_hop_s: float, hop_s: float, n_frames: int) -> np.ndarray:
    """Nearest-frame resampling of an F0 contour onto ``n_frames`` frames of ``hop_s``."""
    idx = np.round(np.arange(n_frames) * hop_s / native_hop_s).astype(int)
    idx = np.clip(idx, 0, len(f0) - 1)
    return np.asarray(f0[idx], dtype=np.float32)


def _drop_short_runs(f0: np.ndarray, *, min_frames: int) -> None:
    """Mark voiced runs shorter than ``min_frames`` as unvoiced, in place."""
    voiced = (f0 > 0).astype(np.int8)
    edges = np.diff(np.concatenate([[0], voiced, [0]]))
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if e - s < min_frames:
            f0[s:e] = 0.0
