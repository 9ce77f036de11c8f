"""Vocal range: lowest and highest sustained pitch and tessitura from an F0 track."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from autovoice.analysis.f0 import F0Track
from autovoice.analysis.pitch import hz_to_midi, note_name
from autovoice.errors import AudioError

#: Shortest run of voiced frames that counts as a sustained pitch.
MIN_SUSTAIN_S = 0.1
#: Percentiles of sustained voiced F0 taken as the extremes (robust to stray octave errors).
EXTREME_PERCENTILES = (2.0, 98.0)
#: Percentiles that define the tessitura, where the voice spends most of its time.
TESSITURA_PERCENTILES = (10.0, 90.0)


@dataclass(frozen=True)
class VocalRange:
    """A voice's range, in Hz and note names.

    ``lowest``/``highest`` are the 2nd/98th percentiles of F0 over sustained voiced runs (>= 100 ms);
    ``tessitura`` is the 10th..90th percentile band; ``voiced_seconds`` is how much audio this rests on,
    and ``confidence`` says whether that is enough (``low`` < 10 s, ``medium`` < 30 s, else ``high``).
    """

    lowest_hz: float
    highest_hz: float
    tessitura_low_hz: float
    tessitura_high_hz: float
    median_hz: float
    voiced_seconds: float
    confidence: Literal["low", "medium", "high"]

    @property
    def lowest_note(self) -> str:
        return note_name(self.lowest_hz)

    @property
    def highest_note(self) -> str:
        return note_name(self.highest_hz)

    @property
    def median_midi(self) -> float:
        return float(hz_to_midi(self.median_hz))

    @property
    def span_semitones(self) -> float:
        return float(hz_to_midi(self.highest_hz) - hz_to_midi(self.lowest_hz))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            lowest_note=self.lowest_note,
            highest_note=self.highest_note,
            tessitura_notes=[note_name(self.tessitura_low_hz), note_name(self.tessitura_high_hz)],
            median_note=note_name(self.median_hz),
            span_semitones=round(self.span_semitones, 2),
        )
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocalRange:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def sustained_f0(track: F0Track, *, min_sustain_s: float = MIN_SUSTAIN_S) -> np.ndarray:
    """Voiced F0 values (Hz) that belong to voiced runs of at least ``min_sustain_s`` seconds."""
    voiced = track.voiced
    if not voiced.any():
        return np.zeros(0, dtype=np.float32)
    min_frames = max(1, int(round(min_sustain_s / track.hop_s)))
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = np.zeros_like(voiced)
    for s, e in zip(starts, ends, strict=True):
        if e - s >= min_frames:
            keep[s:e] = True
    return np.asarray(track.f0[keep])


def vocal_range(track: F0Track, *, min_voiced_s: float = 0.5) -> VocalRange:
    """Measure the vocal range of an F0 track.

    Raises
    ------
    AudioError
        ``no_voiced_audio`` when fewer than ``min_voiced_s`` seconds of sustained voicing are found.
    """
    f0 = sustained_f0(track)
    voiced_s = len(f0) * track.hop_s
    if voiced_s < min_voiced_s:
        raise AudioError(
            "no_voiced_audio",
            f"Found only {voiced_s:.2f} s of sustained voice; at least {min_voiced_s:.1f} s is needed to "
            "measure a vocal range. Use a recording of singing or speech without music.",
            {"voiced_seconds": round(voiced_s, 2), "min_voiced_seconds": min_voiced_s},
        )
    # Percentiles in the log domain, where pitch is perceived.
    midi = hz_to_midi(f0)
    lo, hi = np.percentile(midi, EXTREME_PERCENTILES)
    t_lo, t_hi = np.percentile(midi, TESSITURA_PERCENTILES)
    med = np.median(midi)
    to_hz = lambda m: float(440.0 * 2 ** ((m - 69) / 12))  # noqa: E731
    confidence: Literal["low", "medium", "high"] = (
        "low" if voiced_s < 10 else "medium" if voiced_s < 30 else "high"
    )
    return VocalRange(
        lowest_hz=to_hz(lo),
        highest_hz=to_hz(hi),
        tessitura_low_hz=to_hz(t_lo),
        tessitura_high_hz=to_hz(t_hi),
        median_hz=to_hz(med),
        voiced_seconds=voiced_s,
        confidence=confidence,
    )
