"""DNSMOS: a no-reference estimate of perceived speech quality (Microsoft's DNS Challenge model).

The ONNX models ship inside the ``speechmos`` package and run offline on CPU. DNSMOS scores a 9.01 s
window of 16 kHz audio; a clip's score is the mean over windows hopped across it (1 s hop in the
reference implementation). This module runs the bundled models through its own window loop, so that:

- every sample is covered (a last window is aligned to the end of the clip);
- a clip shorter than one window is looped to 9.01 s and scored once, as the reference tiles short clips,
  but clips shorter than :data:`DNSMOS_MIN_SECONDS` are refused: there the loop seams dominate the score;
- the loaded sessions are kept in :data:`autovoice.models.CACHE` (the reference keeps a module global).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from autovoice.errors import AudioError, ModelUnavailableError, ParameterError
from autovoice.metrics.pitch import json_safe
from autovoice.metrics.similarity import to_16k
from autovoice.progress import ProgressCallback, no_progress

#: DNSMOS input sample rate in Hz.
DNSMOS_SR = 16_000
#: Length of one scored window in seconds (the model's fixed input length).
WINDOW_SECONDS = 9.01
#: Shortest clip accepted, seconds. Shorter clips are looped to a full window by the reference, but at
#: 1 s a clean utterance already loses ~0.8 OVRL to the seams.
DNSMOS_MIN_SECONDS = 2.0
_WINDOW = int(WINDOW_SECONDS * DNSMOS_SR)
_MEL_DROP = 160  # the P.808 model sees the window minus its last hop (its input is 900 mel frames)


@dataclass(frozen=True)
class Dnsmos:
    """DNSMOS P.835 and P.808 mean opinion scores, each on the 1..5 scale (higher is better).

    Attributes
    ----------
    sig
        Speech signal quality (distortion of the voice itself).
    bak
        Background quality (5 = no audible noise).
    ovrl
        Overall quality.
    p808
        Overall quality from the older P.808 model.
    windows
        Number of 9.01 s windows averaged (0 when not measured, all scores NaN then).
    """

    sig: float
    bak: float
    ovrl: float
    p808: float
    windows: int = 0

    @classmethod
    def unmeasured(cls) -> Dnsmos:
        """A placeholder whose scores are NaN (``null`` in JSON), for audio DNSMOS cannot score."""
        return cls(math.nan, math.nan, math.nan, math.nan, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys; NaN becomes ``None``."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]


def dnsmos(y: np.ndarray, *, sr: int, hop_s: float = 1.0, progress: ProgressCallback = no_progress) -> Dnsmos:
    """Estimate the perceived quality of a speech or vocal recording with DNSMOS.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio, nominally in -1..1 (channels are averaged;
        after resampling to 16 kHz samples beyond +-1 are clipped, as a file would).
    sr
        Sample rate in Hz.
    hop_s
        Seconds between window starts (>= 0.1). 1.0 matches the reference implementation; a larger hop
        (up to 9.01 s, non-overlapping) costs proportionally less on long audio. The cost is about one
        model run per window.
    progress
        ``progress(fraction, "dnsmos")`` callback, called after each window.

    Returns
    -------
    Dnsmos
        Mean scores over all windows.

    Raises
    ------
    AudioError
        ``audio_too_short`` below :data:`DNSMOS_MIN_SECONDS`; ``audio_empty``/``audio_invalid_samples``.
    ModelUnavailableError
        ``model_unavailable`` when ``speechmos`` or ``onnxruntime`` is missing.
    """
    check_hop(hop_s)
    return dnsmos_16k(to_16k(y, sr=sr), hop_s=hop_s, progress=progress)


def check_hop(hop_s: float) -> None:
    """Raise ``invalid_parameter`` unless ``hop_s`` is a DNSMOS window hop within 0.1..9.01 s."""
    if not 0.1 <= hop_s <= WINDOW_SECONDS:
        raise ParameterError(
            "invalid_parameter",
            f"The DNSMOS hop must be within 0.1..{WINDOW_SECONDS} s, got {hop_s}.",
            {"hop_s": hop_s if math.isfinite(hop_s) else None},
        )


def dnsmos_16k(x: np.ndarray, *, hop_s: float = 1.0, progress: ProgressCallback = no_progress) -> Dnsmos:
    """:func:`dnsmos` of validated mono float32 16 kHz audio in -1..1."""
    _check_length(x)
    n = max(len(x), _WINDOW)
    hop = round(hop_s * DNSMOS_SR)
    starts = list(range(0, n - _WINDOW + 1, hop))
    if starts[-1] + _WINDOW < n:
        starts.append(n - _WINDOW)
    return _score(x, starts, progress)


def dnsmos_windows(
    x: np.ndarray, *, starts_s: list[float], progress: ProgressCallback = no_progress
) -> Dnsmos:
    """DNSMOS of validated mono float32 16 kHz audio, averaged over the windows starting at ``starts_s``.

    Each start (seconds) is moved back where needed so that its 9.01 s window ends inside the audio;
    audio shorter than one window is looped to one (as :func:`dnsmos` does) and scored once.

    Raises
    ------
    AudioError
        ``audio_too_short`` below :data:`DNSMOS_MIN_SECONDS`.
    ParameterError
        ``invalid_parameter`` when ``starts_s`` is empty.
    """
    if not starts_s:
        raise ParameterError("invalid_parameter", "dnsmos_windows needs at least one window start.")
    _check_length(x)
    last = max(len(x), _WINDOW) - _WINDOW
    starts = [min(max(round(s * DNSMOS_SR), 0), last) for s in starts_s]
    return _score(x, starts, progress)


def _check_length(x: np.ndarray) -> None:
    seconds = len(x) / DNSMOS_SR
    if seconds < DNSMOS_MIN_SECONDS:
        raise AudioError(
            "audio_too_short",
            f"DNSMOS needs at least {DNSMOS_MIN_SECONDS:.0f} s of audio, got {seconds:.2f} s. It scores "
            f"{WINDOW_SECONDS} s windows and loops shorter clips, which makes very short ones meaningless.",
            {"duration_s": round(seconds, 3), "min_s": DNSMOS_MIN_SECONDS},
        )


def _score(x: np.ndarray, starts: list[int], progress: ProgressCallback) -> Dnsmos:
    """Mean DNSMOS of the 9.01 s windows of ``x`` (16 kHz, >= 2 s) at sample offsets ``starts``."""
    model = load_dnsmos()
    if len(x) < _WINDOW:
        x = np.tile(x, -(-_WINDOW // len(x)))[:_WINDOW]
    scores = np.zeros((len(starts), 4))
    for i, start in enumerate(starts):
        seg = np.ascontiguousarray(x[start : start + _WINDOW], dtype=np.float32)
        mel = p808_features(seg[:-_MEL_DROP])
        p808 = model.p808_onnx_sess.run(None, {"input_1": mel[np.newaxis]})[0][0][0]
        raw = model.onnx_sess.run(None, {"input_1": seg[np.newaxis]})[0][0]
        sig, bak, ovrl = model.get_polyfit_val(raw[0], raw[1], raw[2], False)
        scores[i] = (sig, bak, ovrl, p808)
        progress((i + 1) / len(starts), "dnsmos")
    sig, bak, ovrl, p808 = (float(v) for v in scores.mean(axis=0))
    return Dnsmos(sig=sig, bak=bak, ovrl=ovrl, p808=p808, windows=len(starts))


def load_dnsmos() -> Any:
    """The DNSMOS models bundled in ``speechmos`` (``sig_bak_ovr.onnx`` + P.808 ``model_v8.onnx``), cached.

    Returns a ``speechmos.dnsmos.DNSMOS`` holding the two ONNX Runtime sessions (CPU) plus the
    reference feature extraction and score calibration.
    """
    from autovoice.models.cache import CACHE

    def factory() -> Any:
        try:
            from pathlib import Path

            import speechmos.dnsmos as sm
        except ImportError as exc:
            raise ModelUnavailableError(
                "model_unavailable",
                "DNSMOS needs the 'speechmos' and 'onnxruntime' packages, which are not installed. "
                "Run `make install` (or `pip install speechmos onnxruntime`).",
                {"package": "speechmos"},
            ) from exc
        models = Path(sm.__file__).resolve().parent / "dnsmos_models"
        return sm.DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))

    return CACHE.get("dnsmos", "cpu", factory)


def p808_features(seg: np.ndarray) -> np.ndarray:
    """The P.808 model's input for a 16 kHz segment: ``speechmos``' ``audio_melspec`` (120 mel bands,
    321-point frames every 10 ms, dB re the maximum, ``(dB + 40) / 40``) without librosa's cold-start
    cost (see :mod:`autovoice.audio.spectral`)."""
    from autovoice.audio.spectral import mel_power, power_to_db

    mel = mel_power(seg, sr=DNSMOS_SR, n_fft=321, hop_length=160, n_mels=120)
    return np.asarray((power_to_db(mel) + 40.0) / 40.0, dtype=np.float32)
