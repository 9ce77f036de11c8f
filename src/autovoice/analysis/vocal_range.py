"""Vocal range: lowest and highest sustained pitch and tessitura from an F0 track, and whether the voice
was singing or speaking.

A speaking median is not a singing tessitura: people sing higher than they speak. Auto key for a song
therefore plans from the profile's **singing range** (:meth:`VocalRange.singing`): the measured range when
the samples were sung, and the speaking range moved up by :data:`SPEECH_TO_SINGING_SEMITONES` when they
were spoken. Whether a track is sung is read off how steady its pitch is (:func:`steady_share`): a sung
note holds its pitch, speech glides through it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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
#: A window of voiced frames is a steady note when its pitch stays within this span (cents) ...
STEADY_SPAN_CENTS = 100.0
#: ... over this long (seconds).
STEADY_WINDOW_S = 0.15
#: Share of voiced time in steady notes from which a voice counts as sung. Measured with
#: :func:`steady_share` on the shared recordings: the 10 LibriSpeech speakers' utterances 0-4 read
#: 0.00-0.62 per utterance (mean per speaker 0.16-0.49), the shared song's separated vocal 0.58-0.86 per
#: 10 s (0.73 whole).
SUNG_STEADY_SHARE = 0.6
#: How far above a voice's speaking median its singing median lies (semitones). Measured on the shared
#: recordings: the shared song's female singer's median (293 Hz) over the median of the five female
#: LibriSpeech speakers' speaking medians (216 Hz) is 5.3 semitones; the literature's figure for
#: untrained voices is of the same size (speech sits in the lower third of the range, song mid-range).
#: With it a same-sex singer stays in the song's key and a cross-sex one moves by an octave.
SPEECH_TO_SINGING_SEMITONES = 5.3

VoiceStyle = Literal["sung", "spoken", "unknown"]


@dataclass(frozen=True)
class VocalRange:
    """A voice's range, in Hz and note names.

    ``lowest``/``highest`` are the 2nd/98th percentiles of F0 over sustained voiced runs (>= 100 ms);
    ``tessitura`` is the 10th..90th percentile band; ``voiced_seconds`` is how much audio this rests on,
    and ``confidence`` says whether that is enough (``low`` < 10 s, ``medium`` < 30 s, else ``high``).
    ``style`` is ``sung`` or ``spoken`` as measured (``unknown`` for ranges stored before it was), from
    ``steady_share``, the share of voiced time in steady notes.
    """

    lowest_hz: float
    highest_hz: float
    tessitura_low_hz: float
    tessitura_high_hz: float
    median_hz: float
    voiced_seconds: float
    confidence: Literal["low", "medium", "high"]
    style: VoiceStyle = "unknown"
    steady_share: float | None = None

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
        """The range from :meth:`to_dict`'s output (ranges stored before ``style`` read as ``unknown``)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def singing(self) -> VocalRange:
        """The range a song is planned for: this one when the voice sang (or its style is unknown), the
        speaking range moved up by :data:`SPEECH_TO_SINGING_SEMITONES` (median, tessitura and top; the
        bottom stays) when it spoke. The result's ``style`` is ``sung``, so this is idempotent."""
        if self.style != "spoken":
            return self
        up = 2.0 ** (SPEECH_TO_SINGING_SEMITONES / 12.0)
        return replace(
            self,
            highest_hz=self.highest_hz * up,
            tessitura_low_hz=self.tessitura_low_hz * up,
            tessitura_high_hz=self.tessitura_high_hz * up,
            median_hz=self.median_hz * up,
            style="sung",
        )


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
    steady = steady_share(track)
    return VocalRange(
        lowest_hz=to_hz(lo),
        highest_hz=to_hz(hi),
        tessitura_low_hz=to_hz(t_lo),
        tessitura_high_hz=to_hz(t_hi),
        median_hz=to_hz(med),
        voiced_seconds=voiced_s,
        confidence=confidence,
        style=voice_style(steady),
        steady_share=steady,
    )


def voice_style(steady: float) -> Literal["sung", "spoken"]:
    """``sung`` when ``steady`` (a :func:`steady_share`) reaches :data:`SUNG_STEADY_SHARE`, else ``spoken``.

    The one classifier of a voice's style: a profile's range uses it, and a conversion's ``content=auto``
    uses it on the input (with a margin, see :func:`autovoice.pipeline.pitch_plan.decide_content`)."""
    return "sung" if steady >= SUNG_STEADY_SHARE else "spoken"


def steady_share(track: F0Track) -> float:
    """Share (0..1) of voiced time spent in steady notes: windows of :data:`STEADY_WINDOW_S` of voiced
    frames whose pitch stays within :data:`STEADY_SPAN_CENTS`. Singing holds notes (0.6-0.9), speech
    glides (0.0-0.5); 0 for a track without voicing."""
    voiced = track.voiced
    n = max(2, int(round(STEADY_WINDOW_S / track.hop_s)))
    if voiced.sum() < n:
        return 0.0
    cents = np.where(voiced, 1200.0 * np.log2(np.maximum(track.f0, 1e-3) / 440.0), np.nan)
    win = np.lib.stride_tricks.sliding_window_view(cents, n)
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isfinite(win), axis=1) & (np.ptp(np.nan_to_num(win), axis=1) <= STEADY_SPAN_CENTS)
    edges = np.zeros(len(cents) + 1, dtype=np.int32)  # +1 where a steady window starts, -1 past its end
    starts = np.flatnonzero(ok)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + n, -1)
    covered = np.cumsum(edges)[: len(cents)] > 0
    return float(covered[voiced].mean())
