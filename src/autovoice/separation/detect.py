"""Is the input a voice alone? The cheap check ``separation=auto`` makes before separating.

A voice alone falls quiet between words and phrases and sounds one pitch at a time; a band under a voice
does neither. The check works on a 16 kHz mono downmix, on 40 ms frames every 10 ms, over the *active
span* (from the first to the last frame within :data:`ACTIVE_DB` of the loud level, so silence before and
after does not count):

- **floor**: the 10th percentile of the frame levels, relative to the 95th;
- **pauses**: runs of at least :data:`PAUSE_MIN_S` whose level is :data:`PAUSE_DROP_DB` or more below the
  loudest frame within :data:`PAUSE_CONTEXT_S` either side (local, so a quiet verse next to a loud chorus
  is not a pause; a run touching either end of the span is not counted);
- **periodicity**: the loud frames' (within 30 dB of the loud level) normalised autocorrelation peak at
  lags of 60-500 Hz, energy-weighted: near 1 for one voice, lower for chords, drums and noise.

The input is a voice alone when its floor is at or below :data:`MAX_FLOOR_DB` and either it pauses like
speech (at least :data:`MIN_PAUSES` pauses and :data:`MIN_PAUSES_PER_S` per second) or it is one pitch
at a time (periodicity at least :data:`MIN_PERIODICITY`: a singer holds notes legato and breathes only
between phrases). ``bench/content.py`` measures it on the shared recordings and mixes built from them
(results in ``bench/results/content.md``): 92 % of the 100 LibriSpeech utterances and 58-100 % of the
shared song's separated vocal in 5-20 s excerpts are taken for a voice alone; no excerpt of the song's
mix, its accompaniment alone, the mix with a fifth silenced (a break) or speech with the accompaniment
at its level is; with the accompaniment 10 dB below, 7 % of the speech and 1 of 45 vocal excerpts are.

Both mistakes are mild by design: a voice taken for a mix is separated as before, and music would have
to be quiet between phrases and one pitch at a time to pass for a voice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d

from autovoice.audio import resample

#: The rate the check runs at (a mono downmix).
RATE = 16_000
#: Frame length and hop of the level measure, seconds.
FRAME_S = 0.04
HOP_S = 0.01
#: Frames within this many dB of the loud level (95th percentile) delimit the active span.
ACTIVE_DB = 50.0
#: A pause is at least this many dB below the loudest frame within PAUSE_CONTEXT_S either side ...
PAUSE_DROP_DB = 20.0
PAUSE_CONTEXT_S = 1.0
#: ... for at least this long (seconds).
PAUSE_MIN_S = 0.03
#: A voice alone pauses at least this often (per second of the active span) ...
MIN_PAUSES_PER_S = 0.5
#: ... and at least this many times.
MIN_PAUSES = 2
#: A voice alone's quiet frames (10th percentile) lie at least this far below its loud ones (95th), dB.
MAX_FLOOR_DB = -20.0
#: ... or, instead of pausing often, its loud frames are this periodic (0..1): one pitch at a time.
MIN_PERIODICITY = 0.9
#: Loud frames: within this many dB of the loud level.
LOUD_DB = 30.0
#: F0 search range of the periodicity, Hz.
PITCH_RANGE_HZ = (60.0, 500.0)
#: At most this many loud frames are measured for the periodicity (evenly spread), bounding its cost.
MAX_PERIODICITY_FRAMES = 4000


@dataclass(frozen=True)
class VoiceCheck:
    """The measures behind :func:`voice_alone` and its verdict."""

    alone: bool
    pauses: int
    pauses_per_s: float
    floor_db: float  # 10th percentile of the frame levels relative to the 95th
    periodicity: float  # of the loud frames, 0..1
    active_s: float  # length of the active span, seconds

    @property
    def pauses_like_speech(self) -> bool:
        return self.pauses >= MIN_PAUSES and self.pauses_per_s >= MIN_PAUSES_PER_S

    @property
    def reason(self) -> str:
        """One sentence for reports: why the input was or was not taken as a voice alone."""
        measured = (
            f"quiet frames {-self.floor_db:.0f} dB down, {self.pauses_per_s:.1f} pauses a second, "
            f"periodicity {self.periodicity:.2f}"
        )
        if self.alone and self.pauses_like_speech:
            return f"a voice alone, quiet between words and phrases ({measured})"
        if self.alone:
            return f"a voice alone, one pitch at a time and quiet between phrases ({measured})"
        return (
            f"music likely, not quiet between phrases or not one pitch at a time ({measured}; a voice alone "
            f"is {-MAX_FLOOR_DB:.0f} dB down and pauses {MIN_PAUSES_PER_S:g} times a second or has "
            f"periodicity {MIN_PERIODICITY:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_alone": self.alone,
            "floor_db": round(self.floor_db, 1),
            "pauses": self.pauses,
            "pauses_per_s": round(self.pauses_per_s, 2),
            "periodicity": round(self.periodicity, 3),
            "active_seconds": round(self.active_s, 2),
        }


def voice_alone(y: np.ndarray, *, sr: int) -> VoiceCheck:
    """Whether ``y`` is a voice alone (speech or an a cappella vocal) rather than a mix with music.

    Parameters
    ----------
    y
        Float audio, ``(samples,)`` or ``(channels, samples)``, already validated.
    sr
        Sample rate in Hz.

    Returns
    -------
    VoiceCheck
        The verdict and the measures behind it (see the module notes). Cost: a downmix, a resampling to
        16 kHz and a few thousand short FFTs, about 1 % of a Spleeter separation.
    """
    x = np.atleast_2d(y)
    mono = resample(x.mean(axis=0, dtype=np.float32) if len(x) > 1 else x[0], orig_sr=sr, target_sr=RATE)
    hop = int(round(HOP_S * RATE))
    db = _frame_levels(mono, hop=hop)
    if db.size == 0:
        return VoiceCheck(False, pauses=0, pauses_per_s=0.0, floor_db=0.0, periodicity=0.0, active_s=0.0)
    loud = float(np.percentile(db, 95))
    active = np.flatnonzero(db > loud - ACTIVE_DB)
    first = int(active[0])
    span = db[first : active[-1] + 1]
    context = 2 * int(round(PAUSE_CONTEXT_S / HOP_S)) + 1
    quiet = span < maximum_filter1d(span, size=context, mode="nearest") - PAUSE_DROP_DB
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    inner = (starts > 0) & (ends < len(span)) & (ends - starts >= round(PAUSE_MIN_S / HOP_S))
    pauses = int(inner.sum())
    active_s = len(span) * HOP_S
    floor = float(np.percentile(span, 10) - np.percentile(span, 95))
    loud_frames = first + np.flatnonzero(span > np.percentile(span, 95) - LOUD_DB)
    periodicity = _periodicity(mono, loud_frames, hop=hop)
    check = VoiceCheck(
        alone=False,
        pauses=pauses,
        pauses_per_s=pauses / active_s,
        floor_db=floor,
        periodicity=periodicity,
        active_s=active_s,
    )
    alone = floor <= MAX_FLOOR_DB and (check.pauses_like_speech or periodicity >= MIN_PERIODICITY)
    return replace(check, alone=alone)


def _frame_levels(y: np.ndarray, *, hop: int) -> np.ndarray:
    """Level in dB of each FRAME_S frame every ``hop`` samples of mono ``y``."""
    per_frame = int(round(FRAME_S / HOP_S))
    blocks = len(y) // hop
    if blocks < per_frame:
        return np.zeros(0)
    b = y[: blocks * hop].reshape(blocks, hop)
    power = np.einsum("ij,ij->i", b, b, dtype=np.float64)
    frames = np.convolve(power, np.ones(per_frame), mode="valid") / (per_frame * hop)
    return 10.0 * np.log10(frames + 1e-12)


def _periodicity(y: np.ndarray, frames: np.ndarray, *, hop: int) -> float:
    """Energy-weighted normalised autocorrelation peak (lags of PITCH_RANGE_HZ) of the frames starting at
    ``frames * hop`` (at most MAX_PERIODICITY_FRAMES of them, evenly spread), 0..1."""
    if frames.size == 0:
        return 0.0
    frames = frames[:: max(1, -(-frames.size // MAX_PERIODICITY_FRAMES))]
    n = int(round(FRAME_S * RATE))
    nfft = 1 << (2 * n - 1).bit_length()
    window = np.hanning(n)
    lo, hi = int(RATE / PITCH_RANGE_HZ[1]), int(RATE / PITCH_RANGE_HZ[0])
    # The window's own autocorrelation, divided out so that a steady tone reads 1 at its period.
    w_ac = np.fft.irfft(np.abs(np.fft.rfft(window, nfft)) ** 2)[: hi + 1]
    w_ac = np.maximum(w_ac / w_ac[0], 1e-3)
    peaks, weights = [], []
    for chunk in np.array_split(frames, max(1, frames.size // 500)):
        seg = np.stack([y[i * hop : i * hop + n] for i in chunk]).astype(np.float64) * window
        ac = np.fft.irfft(np.abs(np.fft.rfft(seg, nfft, axis=1)) ** 2, axis=1)[:, : hi + 1]
        energy = ac[:, 0]
        ac = ac / np.maximum(energy[:, None], 1e-12) / w_ac
        peaks.append(np.clip(ac[:, lo : hi + 1].max(axis=1), 0.0, 1.0))
        weights.append(energy)
    w = np.concatenate(weights)
    return float(np.average(np.concatenate(peaks), weights=w)) if w.sum() > 0 else 0.0
