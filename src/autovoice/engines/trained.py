"""What the ``rvc`` and ``sovits`` engines share: loading a profile's model once, content features, F0 on the
model's frame grid, retrieval from a FAISS index, loudness mixing, bounded processing windows, and the
steps of rendering one window (:class:`TrainedEngine`: pad and encode, F0 on the padded grid, the seeded
draws, the padding cut off again).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import numpy as np
from pydantic import BaseModel, ValidationError

from autovoice.analysis.f0 import F0Track
from autovoice.audio.io import resample
from autovoice.engines.base import Preset, options_error
from autovoice.errors import ParameterError, unknown_choice

if TYPE_CHECKING:
    from autovoice.config import Settings

_Options = TypeVar("_Options", bound=BaseModel)


class TrainedEngine(Generic[_Options]):
    """The part of the :class:`~autovoice.engines.base.Engine` protocol the ``rvc`` and ``sovits`` engines
    share: the constructor, their options validated by :attr:`options_model`, and no profile features
    (the trained model is the voice)."""

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]

    def __init__(
        self,
        *,
        preset: Preset = "balanced",
        options: Mapping[str, Any] | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
    ) -> None:
        self.device = device
        self.settings = settings
        self.preset: Preset = preset
        self.options = self.validate(options)

    def validate(self, options: Mapping[str, Any] | None) -> _Options:
        """``options`` checked by the engine's model (``invalid_engine_options`` naming the first bad one)."""
        try:
            return cast(_Options, self.options_model.model_validate(dict(options or {})))
        except ValidationError as exc:
            raise options_error(self.name, exc) from None

    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """Nothing: the trained model is the voice."""
        return {}

    # -- the steps of rendering one processing window (see run_windowed) -------------------------
    def encode_window(
        self, seg: np.ndarray, *, sr: int, encoder: Any, info: Any, high_pass: bool = False
    ) -> tuple[np.ndarray, int]:
        """The window's content features ``(frames, dim)`` (width checked against the model's) and the
        padded 16 kHz length: ``seg`` at :data:`ENCODER_SR` (high-passed first for RVC), padded by
        :data:`PAD_S` on each side (reflected), through the model's content encoder."""
        import torch

        y16 = resample_to(seg, orig_sr=sr, target_sr=ENCODER_SR)
        if high_pass:
            y16 = highpass(y16)
        pad = int(PAD_S * ENCODER_SR)
        padded = np.pad(y16, (pad, pad), mode="reflect" if len(y16) > pad else "constant")
        with torch.no_grad():
            feats = encoder.features(
                self.tensor(padded), layer=info.embedder_layer, final_proj=info.final_proj
            )
        out = np.asarray(feats[0].float().cpu().numpy())
        check_width(out, info)
        return out, len(padded)

    @staticmethod
    def window_f0(
        target_f0: np.ndarray, f0: F0Track, *, start: int, sr: int, frame_s: float, n_frames: int
    ) -> np.ndarray:
        """The planned F0 on the model's frame grid over the padded window that starts at sample ``start``."""
        return f0_on_grid(
            target_f0, hop_s=f0.hop_s, start_s=start / sr - PAD_S, frame_s=frame_s, n_frames=n_frames
        )

    def tensor(self, a: np.ndarray) -> Any:
        """``a`` (float32, C order) as a batch of one on the engine's device."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].to(self.device)

    def draws(self, net: Any, frames: int, *, seed: int, start: int, source: bool = True) -> dict[str, Any]:
        """The synthesizer's random draws for one window: the prior's noise and (NSF models) the source's
        phase and noise, one per harmonic, drawn on the CPU from ``seed + start`` in that order (the same
        seed gives the same audio on any device)."""
        import torch

        gen = torch.Generator(device="cpu").manual_seed(seed + start)
        out = {"prior_noise": torch.randn(1, net.enc_p.out_channels, frames, generator=gen).to(self.device)}
        if source:
            harmonics = net.dec.harmonics
            out["phase"] = torch.rand(1, harmonics, generator=gen).to(self.device)
            noise = torch.randn(1, frames * net.hop_length, harmonics, generator=gen)
            out["source_noise"] = noise.to(self.device)
        return out

    @staticmethod
    def unpad(audio: Any, *, model_sr: int) -> np.ndarray:
        """The synthesizer's output (a ``(1, 1, samples)`` tensor at ``model_sr``) without the
        :data:`PAD_S` of padding on each side."""
        out = np.asarray(audio[0, 0].float().cpu().numpy())
        cut = int(round(PAD_S * model_sr))
        return out[cut : len(out) - cut] if len(out) > 2 * cut else out


#: Content encoders run at 16 kHz with a 320-sample hop (50 frames per second).
ENCODER_SR = 16000
ENCODER_HOP = 320
#: Processing window and the context on each side (bounded memory: the transformers are quadratic).
WINDOW_S = 20.0
CONTEXT_S = 1.0
FADE_S = 0.05
#: Reflection padding around each window before the content encoder, cut from the rendered audio again,
#: seconds (RVC's ``x_pad``): the encoder and the synthesizer see context at the window's edges.
PAD_S = 0.5
#: RVC's high-pass before content extraction (5th-order Butterworth at 48 Hz, run forwards and backwards).
HIGHPASS_HZ = 48.0
HIGHPASS_ORDER = 5
#: RVC's retrieval averages each frame's nearest training frames, this many.
RETRIEVE_K = 8
#: ``rms_mix`` compares loudness envelopes of RMS over frames of twice this, hopping by it (RVC's).
RMS_HOP_S = 0.5


def file_key(*paths: Path | None) -> str:
    """A cache key that changes when any of the files changes (path, size, mtime)."""
    parts = []
    for p in paths:
        if p is None:
            parts.append("-")
            continue
        st = p.stat()
        parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def check_inputs(
    y: np.ndarray, *, sr: int, f0: F0Track, target_f0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as 1-D float32 and ``target_f0`` as float64 on ``f0``'s grid; ``invalid_parameter`` otherwise."""
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1 or x.size == 0 or sr <= 0:
        raise ParameterError(
            "invalid_parameter", "Expected non-empty mono audio and a positive sample rate.", {}
        )
    tgt = np.asarray(target_f0, dtype=np.float64).reshape(-1)
    if tgt.shape != np.asarray(f0.f0).reshape(-1).shape:
        raise ParameterError(
            "invalid_parameter",
            f"target_f0 has {tgt.size} frames but the source F0 track has {np.asarray(f0.f0).size}; plan the "
            "target F0 on the source track's frame grid.",
            {"target_frames": int(tgt.size), "source_frames": int(np.asarray(f0.f0).size)},
        )
    if not np.all(np.isfinite(tgt)) or np.any(tgt < 0):
        raise ParameterError("invalid_parameter", "target_f0 must be finite and >= 0 Hz (0 = unvoiced).", {})
    return x, tgt


def check_width(feats: np.ndarray, info: Any) -> None:
    """``model_config_mismatch`` when the content encoder's features are not as wide as the model takes."""
    if feats.shape[1] != info.content_dim:
        raise ParameterError(
            "model_config_mismatch",
            f"The '{info.embedder}' content encoder gives {feats.shape[1]}-d features; this model takes "
            f"{info.content_dim}-d ones (layer {info.embedder_layer}). Add the encoder the model was trained "
            f"with: `autovoice models add {info.embedder} PATH`.",
            {"embedder": info.embedder, "got": int(feats.shape[1]), "expected": info.content_dim},
        )


def f0_on_grid(f0: np.ndarray, *, hop_s: float, start_s: float, frame_s: float, n_frames: int) -> np.ndarray:
    """F0 (Hz, 0 = unvoiced) at frames ``start_s + i * frame_s``, nearest frame of a track with ``hop_s``."""
    t = start_s + np.arange(n_frames) * frame_s
    idx = np.clip(np.round(t / hop_s).astype(np.int64), 0, max(len(f0) - 1, 0))
    out = np.asarray(f0, dtype=np.float64)[idx] if len(f0) else np.zeros(n_frames)
    out[(t < 0) | (t > len(f0) * hop_s)] = 0.0
    return out


def median_filter_voiced(f0: np.ndarray, radius: int) -> np.ndarray:
    """Median of each voiced frame's voiced neighbours within ``radius`` frames (RVC's ``filter_radius``)."""
    if radius < 3:
        return f0
    half = radius // 2
    out = f0.copy()
    voiced = f0 > 0
    for i in np.flatnonzero(voiced):
        lo, hi = max(0, i - half), min(len(f0), i + half + 1)
        window = f0[lo:hi][voiced[lo:hi]]
        out[i] = float(np.median(window))
    return out


def highpass(y16k: np.ndarray) -> np.ndarray:
    from scipy import signal

    b, a = signal.butter(N=HIGHPASS_ORDER, Wn=HIGHPASS_HZ, btype="high", fs=ENCODER_SR)
    if len(y16k) <= 3 * max(len(a), len(b)):
        return y16k
    return np.asarray(signal.filtfilt(b, a, y16k), dtype=np.float32)


def retrieve(feats: np.ndarray, index: Any, big: np.ndarray, rate: float) -> np.ndarray:
    """RVC's retrieval: each frame moves ``rate`` of the way to the inverse-square-distance-weighted mean
    of its :data:`RETRIEVE_K` nearest training frames in ``index`` (``big`` holds the index's vectors)."""
    if rate <= 0:
        return feats
    k = min(RETRIEVE_K, int(index.ntotal))
    score, ix = index.search(np.ascontiguousarray(feats, dtype=np.float32), k)
    ix = np.where(ix < 0, 0, ix)
    weight = np.square(1 / np.maximum(score, 1e-12))
    weight /= weight.sum(axis=1, keepdims=True)
    near = np.sum(big[ix] * weight[:, :, None], axis=1)
    return np.asarray(rate * near + (1 - rate) * feats, dtype=np.float32)


def rms_mix(source: np.ndarray, out: np.ndarray, *, sr: int, rate: float) -> np.ndarray:
    """RVC's ``rms_mix_rate``: scale ``out`` by ``rms_src ** (1 - rate) * rms_out ** (rate - 1)`` (half-second
    RMS envelopes, :data:`RMS_HOP_S`, linearly interpolated). 1 keeps the output's own loudness, 0 follows
    the source's."""
    if rate >= 1:
        return out

    def envelope(x: np.ndarray) -> np.ndarray:
        hop = max(1, int(sr * RMS_HOP_S))
        frame = hop * 2
        padded = np.pad(x.astype(np.float64), (frame // 2, frame // 2))
        n = 1 + (len(padded) - frame) // hop
        rms = np.array([np.sqrt(np.mean(padded[i * hop : i * hop + frame] ** 2)) for i in range(max(n, 1))])
        centres = np.arange(len(rms)) * hop
        return np.asarray(np.interp(np.arange(len(x)), centres, rms), dtype=np.float64)

    e_src = envelope(source)
    e_out = np.maximum(envelope(out), 1e-6)
    return np.asarray(out * np.power(e_src, 1 - rate) * np.power(e_out, rate - 1), dtype=np.float32)


def nearest_frames(x: np.ndarray, n: int) -> np.ndarray:
    """``(n, dim)`` rows of ``x`` ``(frames, dim)`` repeated/dropped to ``n`` frames (nearest)."""
    if len(x) == n:
        return x
    idx = np.minimum((np.arange(n) * len(x) / max(n, 1)).astype(np.int64), len(x) - 1)
    return x[idx]


@dataclass(frozen=True)
class Window:
    start: int  # first sample of the segment processed (context included)
    stop: int
    keep_start: int  # the part of the result kept (fades included)
    keep_stop: int


def windows(n: int, *, sr: int, window_s: float = WINDOW_S, context_s: float = CONTEXT_S) -> list[Window]:
    """Processing windows over ``n`` samples: cores of ``window_s`` with ``context_s`` each side."""
    core = int(window_s * sr)
    ctx = int(context_s * sr)
    fade = int(FADE_S * sr)
    if n <= core + 2 * ctx:
        return [Window(0, n, 0, n)]
    out = []
    for s in range(0, n, core):
        e = min(n, s + core)
        out.append(Window(max(0, s - ctx), min(n, e + ctx), max(0, s - fade), min(n, e + fade)))
    return out


def run_windowed(
    x: np.ndarray,
    *,
    sr: int,
    convert: Callable[[np.ndarray, int], np.ndarray],
    progress: Callable[[float, str], None],
) -> np.ndarray:
    """``convert(segment, start_sample)`` over bounded windows, joined with short linear crossfades.

    ``convert`` returns audio at ``sr`` as long as its segment.
    """
    parts = windows(len(x), sr=sr)
    out = np.zeros(len(x), dtype=np.float32)
    weight = np.zeros(len(x), dtype=np.float32)
    fade = int(FADE_S * sr)
    for i, w in enumerate(parts):
        seg = convert(x[w.start : w.stop], w.start)
        kept = seg[w.keep_start - w.start : w.keep_stop - w.start]
        ramp = np.ones(len(kept), dtype=np.float32)
        if len(parts) > 1 and fade > 0:
            if w.keep_start > 0:
                ramp[: 2 * fade] = np.linspace(0, 1, 2 * fade, dtype=np.float32)[: len(ramp)]
            if w.keep_stop < len(x):
                ramp[-2 * fade :] = np.minimum(
                    ramp[-2 * fade :], np.linspace(1, 0, 2 * fade, dtype=np.float32)
                )
        out[w.keep_start : w.keep_stop] += kept * ramp
        weight[w.keep_start : w.keep_stop] += ramp
        progress((i + 1) / len(parts), "convert")
    return out / np.maximum(weight, 1e-6)


def to_length(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def resample_to(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return y.astype(np.float32)
    return np.asarray(resample(y.astype(np.float32), orig_sr=orig_sr, target_sr=target_sr), dtype=np.float32)


def add_user_weights(name: str, path: str | os.PathLike[str], *, settings: Settings | None = None) -> Path:
    """``autovoice models add NAME PATH``: the user's own content encoder (``hubert_base`` /
    ``contentvec``, one embedder under two names) or RMVPE's ``rmvpe.pt``, checked by loading it with
    the loader that will run it, then copied into the model cache (:func:`autovoice.models.local.add_local`).
    Returns the copy.

    Raises
    ------
    ParameterError
        ``unknown_model`` for another name (the message lists the valid ones); what loading raises
        (``untrusted_checkpoint``, ``invalid_checkpoint``, ...).
    NotFoundError
        ``file_not_found``.
    """
    from autovoice.analysis.rmvpe import load_rmvpe_file
    from autovoice.models.hubert import ENCODER_NAMES, load_content_encoder
    from autovoice.models.local import LOCAL_NAMES, add_local

    checks: dict[str, Callable[[Path], object]] = {
        **dict.fromkeys(ENCODER_NAMES, load_content_encoder),
        "rmvpe": load_rmvpe_file,
    }
    if name not in checks:
        raise unknown_choice("unknown_model", "local model name", name, LOCAL_NAMES)
    return add_local(name, path, check=checks[name], settings=settings)
