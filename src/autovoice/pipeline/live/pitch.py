"""The pitch tracker of a live stream: the F0 of each block's window (:class:`LiveTracker`).

On a CPU, FCPE runs as an int8 copy of the model (:func:`autovoice.models.fcpe.int8_copy`): on a
window of ~20 frames its float weights (38 MB, read from memory on every call) were most of a block's
cost whatever the block's length; in int8 they take a quarter of that and the call ~2.5x less time,
with the same voicing decisions as often as two float windows agree and the F0 within about a cent.
The offline tracker (:func:`autovoice.analysis.estimate_f0`) keeps the float model. On a GPU, and for
the other methods, the window goes through :func:`~autovoice.analysis.estimate_f0` as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autovoice.analysis.f0 import (
    DEFAULT_FMAX,
    DEFAULT_FMIN,
    FRAME_HOP_S,
    clean_f0,
    fcpe_frames,
    fcpe_input,
)

#: The window's own level gate is off: the converter gates on the loudest frame heard in the stream.
_NO_SILENCE_GATE = -1000.0


def load_fcpe_int8(device: str) -> Any:
    """The int8 FCPE for live windows on the CPU (cached once per process beside the float model)."""
    from autovoice.models.cache import CACHE, load_fcpe
    from autovoice.models.fcpe import int8_copy

    return CACHE.get("fcpe-int8", device, lambda: int8_copy(load_fcpe(device)))


class LiveTracker:
    """F0 (Hz, 0 = unvoiced) of a live window on the 10 ms grid, frame ``i`` centred at ``i * 10`` ms.

    Parameters
    ----------
    method
        ``dio``, or an F0 method of :data:`autovoice.analysis.f0.F0_METHODS` (validated by the caller).
    sr
        The stream's sample rate.
    device
        Torch device for the neural methods.
    """

    def __init__(self, method: str, *, sr: int, device: str) -> None:
        from autovoice.models.fcpe import int8_available

        self.method = method
        self.sr = sr
        self.device = device
        self.int8 = method == "fcpe" and device == "cpu" and int8_available()
        self._model = load_fcpe_int8(device) if self.int8 else None

    def __call__(self, seg: np.ndarray, *, n_frames: int) -> np.ndarray:
        """``(n_frames,)`` float64 F0 of ``seg`` (mono float32 at :attr:`sr`)."""
        if self.method == "dio":
            return dio(seg, sr=self.sr, n_frames=n_frames)
        if self._model is not None:
            f0 = fcpe_frames(self._model, fcpe_input(seg, sr=self.sr), fmin=DEFAULT_FMIN)
            out = np.zeros(n_frames, np.float32)
            m = min(n_frames, len(f0))
            out[:m] = f0[:m]
            clean_f0(
                out,
                seg,
                sr=self.sr,
                hop_s=FRAME_HOP_S,
                fmin=DEFAULT_FMIN,
                fmax=DEFAULT_FMAX,
                silence_db=_NO_SILENCE_GATE,
            )
            return out.astype(np.float64)
        from autovoice.analysis import estimate_f0

        f0 = estimate_f0(
            seg,
            sr=self.sr,
            method=self.method,  # type: ignore[arg-type]  # validated by the converter
            hop_s=FRAME_HOP_S,
            device=self.device,
            silence_db=_NO_SILENCE_GATE,
        ).f0.astype(np.float64)
        return f0[:n_frames]


def dio(seg: np.ndarray, *, sr: int, n_frames: int) -> np.ndarray:
    """F0 (Hz, 0 = unvoiced) of ``n_frames`` 10 ms frames by WORLD's DIO + StoneMask at 16 kHz."""
    import pyworld

    from autovoice.audio import resample

    x = np.ascontiguousarray(resample(seg, orig_sr=sr, target_sr=16_000), dtype=np.float64)
    f0, t = pyworld.dio(
        x, 16_000, f0_floor=DEFAULT_FMIN, f0_ceil=DEFAULT_FMAX, frame_period=FRAME_HOP_S * 1000.0
    )
    f0 = pyworld.stonemask(x, f0, t, 16_000)
    out = np.zeros(n_frames)
    m = min(n_frames, len(f0))
    out[:m] = f0[:m]
    return out
