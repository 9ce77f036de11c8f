"""The pitch plan: what F0 the converted voice sings, given the source contour and the target's range.

Manual: shift by N semitones (-24..24). Auto key: move the source's median pitch onto the profile's
median. How depends on what the input is (:func:`decide_content`, the ``content`` option):

- **speech** aims at the profile's speaking median with the exact shift (fractional semitones, no
  rounding): a man's read speech into a woman's profile moves by the +6.9 semitones between their
  speaking medians, not by an octave.
- **song** aims at the profile's **singing** range (:meth:`VocalRange.singing`) and rounds: with an
  accompaniment mixed back the shift is a whole number of octaves (the vocal stays in the song's key),
  so a male-to-female conversion lands on +12 rather than +19 even when the singer's median sits 7
  semitones off; for a bare vocal it is the nearest semitone. A profile built from speech sings higher
  than it speaks, so its speaking range moves up by
  :data:`~autovoice.analysis.vocal_range.SPEECH_TO_SINGING_SEMITONES` first. Without that, a female
  singer (median 293 Hz) converted into a female speaking profile (median 178 Hz) with accompaniment
  went down an octave; with it she stays in the song's key, and a male singer moves up an octave.

``content=auto`` decides per input from the vocal's own pitch track with the profile's style classifier
(:func:`~autovoice.analysis.vocal_range.steady_share`: sung notes hold their pitch, speech glides; a
share of :data:`~autovoice.analysis.vocal_range.SUNG_STEADY_SHARE` or more is singing). Near that
boundary (within :data:`CONTENT_MARGIN`) one reading is not enough, and what a mistake costs decides:
with a band mixed back the input is planned as a song (a song planned as speech would be shifted out of
the band's key), without one as speech (speech planned as a song would aim a singing range too high). A
band is an accompaniment that was given, or that separation found at least :data:`BAND_MIN_DB` loud: the
residue that separating a voice alone leaves is not one. Measured on the shared recordings
(``bench/content.py``): the 100 LibriSpeech utterances read 0.00-0.62 (all planned as speech when bare;
4 would be songs under a band), the shared song's separated vocal 0.58-0.86 per 10 s and 0.73 whole
(every excerpt planned as a song with its accompaniment; bare, the 10 s excerpts under 0.70, 5 of 12,
are planned as speech). Optional median smoothing of the contour.

The range cap moves whole **phrases** by octaves, never single syllables, so the melody's intervals
inside a phrase are kept. A phrase is a stretch of voiced runs joined across unvoiced gaps shorter than
``phrase_gap_s`` (0.35 s: of the unvoiced gaps in 100 LibriSpeech utterances, 84 % are under 0.25 s,
consonants and syllable boundaries, and a second mode of pauses lies at 0.4..1 s; 0.35 s sits in the
valley between the two; at 0.2 s single words become phrases and move alone again). The decision
has hysteresis, on the phrase's median after the global shift and its distance beyond the target's
``lowest..highest`` edges:

- a phrase at the global shift moves by an octave only when its median lies more than
  ``move_margin`` (3 semitones) beyond an edge, and only to an octave where it sits closer to the range;
- once phrases are moved, the following ones keep that octave until one is back within
  ``return_margin`` (1 semitone) of the range at the global shift (then it returns), or is clearly
  outside at the moved octave (then it is decided afresh). A run of phrases hovering between the two
  margins therefore keeps one decision instead of flipping back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np
from scipy.ndimage import median_filter

from autovoice.analysis import F0Track, VocalRange, hz_to_midi, sustained_f0
from autovoice.analysis.vocal_range import SUNG_STEADY_SHARE, steady_share, voice_style
from autovoice.errors import AudioError, ParameterError

PitchMode = Literal["song", "speech"]
#: What a conversion's input is, as the ``content`` option names it (``auto``: :func:`decide_content`).
Content = Literal["auto", "speech", "song"]
#: Each content choice and what it does, for help texts and the web page.
CONTENT_CHOICES: dict[str, str] = {
    "auto": "Decided per input from how steady its pitch is (sung notes hold it, speech glides).",
    "speech": "Auto key aims at the voice's speaking median with the exact shift, no rounding.",
    "song": "Auto key aims at the voice's singing range in whole semitones (whole octaves with an "
    "accompaniment, to stay in key).",
}
assert tuple(CONTENT_CHOICES) == get_args(Content)
#: Auto content: a steady share within this of SUNG_STEADY_SHARE is too close to call on its own.
CONTENT_MARGIN = 0.1
#: ... then a band decides for a song: an accompaniment mixed back that was given, or that separation found
#: at least this loud relative to the vocal stem (dB). Separating a voice alone leaves a residue (Spleeter:
#: 7-34 dB below the vocal of 20 LibriSpeech utterances, median 23); the shared song's band is 0-4 dB
#: above its vocal, and music mixed 10 dB under speech comes out 5-11 dB below it.
BAND_MIN_DB = -10.0
MAX_SHIFT = 24.0
#: Unvoiced gaps shorter than this (seconds) join voiced runs into one phrase.
PHRASE_GAP_S = 0.35
#: A phrase at the global shift moves by an octave only when its median is this many semitones
#: beyond the target's lowest/highest.
MOVE_MARGIN = 3.0
#: A moved run of phrases returns to the global shift at the first phrase whose median is within this
#: many semitones of the range there.
RETURN_MARGIN = 1.0
#: Octave moves considered per phrase, in octaves either way.
MAX_OCTAVES = 2


@dataclass(frozen=True)
class OctaveMove:
    """One phrase moved off the global shift."""

    start_s: float
    end_s: float
    semitones: float  # +-12 or +-24, on top of the global shift

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "semitones": self.semitones}


@dataclass(frozen=True)
class PitchPlan:
    """The planned output contour and how it was reached."""

    target_f0: np.ndarray  # Hz per frame of the source track, 0 = unvoiced
    shift_semitones: float  # the global shift applied to every voiced frame (before octave moves)
    auto_key: bool
    #: The exact semitone distance from the source's median to the target's (``None`` without a
    #: target or a voiced source); auto key rounds it to ``shift_semitones``.
    ideal_shift_semitones: float | None
    capped_frames: int  # voiced frames moved by an octave to stay inside the target's range
    phrases: int = 0  # phrases the range cap judged (0 when it is off)
    octave_moves: tuple[OctaveMove, ...] = ()
    voiced_frames: int = 0

    @property
    def phrases_moved(self) -> int:
        return len(self.octave_moves)

    @property
    def moved_share(self) -> float:
        """Share of voiced frames moved off the global shift (0..1)."""
        return self.capped_frames / self.voiced_frames if self.voiced_frames else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "shift_semitones": round(self.shift_semitones, 3),
            "auto_key": self.auto_key,
            "ideal_shift_semitones": (
                None if self.ideal_shift_semitones is None else round(self.ideal_shift_semitones, 3)
            ),
            "capped_frames": self.capped_frames,
            "phrases": self.phrases,
            "phrases_moved": self.phrases_moved,
            "moved_share": round(self.moved_share, 4),
            "octave_moves": [m.to_dict() for m in self.octave_moves],
        }


@dataclass(frozen=True)
class ContentDecision:
    """Whether the input was planned as speech or as a song, and why (:func:`decide_content`)."""

    used: PitchMode
    decided_by: Literal["auto", "option"]  # the input's pitch, or the content option
    steady_share: float  # of the vocal's pitch track, 0..1 (measured either way)
    accompaniment: bool  # an accompaniment is mixed back
    #: Its level relative to the vocal stem when separation found it (``None``: given, or none).
    accompaniment_db: float | None = None

    @property
    def band(self) -> bool:
        """An accompaniment to keep in key with: one was given, or separation found one at least
        :data:`BAND_MIN_DB` loud (not the residue separating a voice alone leaves)."""
        return self.accompaniment and (self.accompaniment_db is None or self.accompaniment_db >= BAND_MIN_DB)

    @property
    def reason(self) -> str:
        """One sentence for reports."""
        share = f"steady share {self.steady_share:.2f}"
        if self.decided_by == "option":
            return f"the content option says {self.used} ({share})"
        lo, hi = SUNG_STEADY_SHARE - CONTENT_MARGIN, SUNG_STEADY_SHARE + CONTENT_MARGIN
        if self.steady_share >= hi:
            return f"{share} >= {hi:.2f}: the pitch holds on notes, as in singing"
        if self.steady_share < lo:
            return f"{share} < {lo:.2f}: the pitch glides, as in speech"
        if self.band:
            why = "an accompaniment is mixed back, so it is kept in key as a song"
        elif self.accompaniment:
            why = f"the accompaniment is faint ({self.accompaniment_db:.0f} dB), so it is planned as speech"
        else:
            why = "there is no accompaniment, so it is planned as speech"
        return f"{share} is within {CONTENT_MARGIN:g} of {SUNG_STEADY_SHARE:g}, too close to call; {why}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "decided_by": self.decided_by,
            "steady_share": round(self.steady_share, 3),
            "accompaniment": self.accompaniment,
            "accompaniment_db": None if self.accompaniment_db is None else round(self.accompaniment_db, 1),
            "reason": self.reason,
        }


def decide_content(
    source: F0Track, *, content: Content = "auto", accompaniment: bool, accompaniment_db: float | None = None
) -> ContentDecision:
    """Whether ``source`` (the vocal's pitch track) is planned as speech or as a song.

    ``content`` ``speech`` or ``song`` is used as given; ``auto`` reads the track's
    :func:`~autovoice.analysis.vocal_range.steady_share` with the profile's style classifier, and within
    :data:`CONTENT_MARGIN` of its boundary lets the accompaniment decide: song when one is mixed back
    (``accompaniment``) and is a band (given, ``accompaniment_db`` ``None``, or found by separation at
    least :data:`BAND_MIN_DB` loud relative to the vocal), speech otherwise (see the module notes).
    """
    share = steady_share(source)
    if content != "auto":
        return ContentDecision(content, "option", share, accompaniment, accompaniment_db)
    decision = ContentDecision("speech", "auto", share, accompaniment, accompaniment_db)
    if abs(share - SUNG_STEADY_SHARE) < CONTENT_MARGIN:
        used: PitchMode = "song" if decision.band else "speech"
    else:
        used = "song" if voice_style(share) == "sung" else "speech"
    return replace(decision, used=used)


def auto_shift(
    source: F0Track, target: VocalRange, *, mode: PitchMode, keep_key: bool
) -> tuple[float, float]:
    """The auto-key shift in semitones and the exact ideal it was rounded from.

    ``keep_key`` (songs with accompaniment): round to whole octaves; otherwise songs round to whole
    semitones and speech keeps the exact value. Songs aim at the target's singing range.
    """
    ideal = _ideal_shift(source, target.singing() if mode == "song" else target)
    if ideal is None:
        raise AudioError(
            "no_voiced_audio",
            "Auto key needs a voiced source, but almost no pitched voice was found in the input. "
            "Check that the input is (or contains) a vocal, or give a manual pitch_shift instead.",
        )
    if mode == "speech":
        shift = ideal
    elif keep_key:
        shift = 12.0 * round(ideal / 12.0)
    else:
        shift = float(round(ideal))
    return float(np.clip(shift, -MAX_SHIFT, MAX_SHIFT)), ideal


def plan_pitch(
    source: F0Track,
    *,
    target: VocalRange | None = None,
    semitones: float | None = None,
    auto_key: bool = False,
    mode: PitchMode = "song",
    keep_key: bool = False,
    smooth_radius: int = 0,
    cap_to_range: bool = False,
    phrase_gap_s: float = PHRASE_GAP_S,
    move_margin: float = MOVE_MARGIN,
    return_margin: float = RETURN_MARGIN,
) -> PitchPlan:
    """Plan the output F0.

    Parameters
    ----------
    source
        The source vocal's F0 track.
    target
        The profile's vocal range (needed for ``auto_key`` and ``cap_to_range``).
    semitones
        Manual shift, -24..24. Mutually exclusive with ``auto_key``.
    auto_key
        Compute the shift from the source and target medians (see module docs).
    mode
        ``song`` (whole semitones) or ``speech`` (exact).
    keep_key
        With ``auto_key`` on a song: shift by whole octaves only (the accompaniment is not transposed).
    smooth_radius
        Median-filter radius in frames applied within voiced runs (0 = off; 0..25).
    cap_to_range
        Move whole phrases whose median falls clearly outside the target's lowest..highest by octaves,
        with hysteresis (see module docs).
    phrase_gap_s
        Unvoiced gaps shorter than this many seconds join voiced runs into one phrase (0..2).
    move_margin
        Semitones beyond the range edge a phrase's median must reach before it moves (0..12).
    return_margin
        Semitones from the range edge within which a phrase returns to the global shift after moved
        phrases (0..``move_margin``).

    Returns
    -------
    PitchPlan
        The target F0 on the source's frame grid and the decisions behind it.
    """
    if auto_key and semitones is not None:
        raise ParameterError(
            "invalid_parameter",
            "Pass either a manual pitch shift or auto key, not both.",
            {"semitones": semitones, "auto_key": True},
        )
    if semitones is not None and not (-MAX_SHIFT <= semitones <= MAX_SHIFT and np.isfinite(semitones)):
        raise ParameterError(
            "invalid_pitch_shift",
            f"Pitch shift must be within -24..24 semitones, got {semitones}.",
            {"semitones": semitones, "min": -MAX_SHIFT, "max": MAX_SHIFT},
        )
    if not 0 <= smooth_radius <= 25:
        raise ParameterError("invalid_parameter", f"smooth_radius must be 0..25 frames, got {smooth_radius}.")
    if not 0 <= phrase_gap_s <= 2:
        raise ParameterError("invalid_parameter", f"phrase_gap_s must be 0..2 seconds, got {phrase_gap_s}.")
    if not (0 <= return_margin <= move_margin <= 12):
        raise ParameterError(
            "invalid_parameter",
            f"Need 0 <= return_margin <= move_margin <= 12 semitones, got {return_margin} and {move_margin}.",
            {"return_margin": return_margin, "move_margin": move_margin},
        )
    if (auto_key or cap_to_range) and target is None:
        raise ParameterError("invalid_parameter", "Auto key and the range cap need the target's vocal range.")

    if target is not None and mode == "song":
        target = target.singing()
    ideal: float | None
    if auto_key:
        assert target is not None
        shift, ideal = auto_shift(source, target, mode=mode, keep_key=keep_key)
    else:
        shift = float(semitones or 0.0)
        ideal = None if target is None else _ideal_shift(source, target)

    f0 = source.f0.astype(np.float64).copy()
    voiced = f0 > 0
    runs = _runs(voiced)
    if smooth_radius > 0:
        for s, e in runs:
            if e - s > 2 * smooth_radius:
                f0[s:e] = median_filter(f0[s:e], size=2 * smooth_radius + 1, mode="nearest")
    f0[voiced] *= 2.0 ** (shift / 12.0)

    moved: list[OctaveMove] = []
    phrases: list[tuple[int, int]] = []
    capped = 0
    if cap_to_range:
        assert target is not None
        phrases = _phrases(runs, max_gap=int(round(phrase_gap_s / source.hop_s)))
        medians = [float(np.median(hz_to_midi(f0[s:e][voiced[s:e]]))) for s, e in phrases]
        octaves = octave_decisions(
            medians,
            lowest_midi=float(hz_to_midi(target.lowest_hz)),
            highest_midi=float(hz_to_midi(target.highest_hz)),
            move_margin=move_margin,
            return_margin=return_margin,
        )
        for (s, e), k in zip(phrases, octaves, strict=True):
            if k != 0:
                f0[s:e][voiced[s:e]] *= 2.0**k
                capped += int(voiced[s:e].sum())
                moved.append(OctaveMove(s * source.hop_s, e * source.hop_s, 12.0 * k))
    return PitchPlan(
        target_f0=f0.astype(np.float32),
        shift_semitones=shift,
        auto_key=auto_key,
        ideal_shift_semitones=ideal,
        capped_frames=capped,
        phrases=len(phrases),
        octave_moves=tuple(moved),
        voiced_frames=int(voiced.sum()),
    )


def octave_decisions(
    medians: list[float],
    *,
    lowest_midi: float,
    highest_midi: float,
    move_margin: float = MOVE_MARGIN,
    return_margin: float = RETURN_MARGIN,
) -> list[int]:
    """The octave (-2..2) each phrase moves by, from the phrases' median pitches in order.

    Parameters
    ----------
    medians
        Each phrase's median pitch (MIDI note number) after the global shift, in time order.
    lowest_midi, highest_midi
        The target's range edges (MIDI note numbers).
    move_margin, return_margin
        The hysteresis margins in semitones (see module docs).
    """

    def outside(m: float, k: int) -> float:
        """Semitones by which ``m`` moved by ``k`` octaves lies outside the range (0 inside)."""
        p = m + 12 * k
        return max(lowest_midi - p, p - highest_midi, 0.0)

    def best(m: float) -> int:
        # The octave closest to the range; ties go to the smaller move. Staying put wins unless the
        # move brings the phrase closer.
        k = min(range(-MAX_OCTAVES, MAX_OCTAVES + 1), key=lambda c: (outside(m, c), abs(c)))
        return k if outside(m, k) < outside(m, 0) else 0

    out: list[int] = []
    k = 0
    for m in medians:
        if k == 0:
            if outside(m, 0) > move_margin:
                k = best(m)
        elif outside(m, 0) <= return_margin:
            k = 0
        elif outside(m, k) > move_margin:
            k = best(m)
        out.append(k)
    return out


def _ideal_shift(source: F0Track, target: VocalRange) -> float | None:
    """Semitones from the source's median pitch (sustained runs where there are any) to the target's."""
    voiced = sustained_f0(source)
    if voiced.size == 0:
        voiced = source.f0[source.voiced]
    if voiced.size < 10:
        return None
    return float(target.median_midi - np.median(hz_to_midi(voiced)))


def _phrases(runs: list[tuple[int, int]], *, max_gap: int) -> list[tuple[int, int]]:
    """Voiced runs joined across gaps shorter than ``max_gap`` frames: ``(start, end)`` frame spans."""
    out: list[tuple[int, int]] = []
    for s, e in runs:
        if out and s - out[-1][1] < max_gap:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))
