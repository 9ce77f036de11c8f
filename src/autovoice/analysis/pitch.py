"""Pitch units: Hz, MIDI note numbers, cents and note names (A4 = 440 Hz, equal temperament)."""

from __future__ import annotations

import re

import numpy as np

from autovoice.errors import ParameterError

A4_HZ = 440.0
A4_MIDI = 69
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def hz_to_midi(hz: np.ndarray | float) -> np.ndarray:
    """Fractional MIDI note number of a frequency in Hz (69 = A4). Non-positive input gives NaN."""
    f = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, A4_MIDI + 12 * np.log2(f / A4_HZ), np.nan)


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    """Frequency in Hz of a (fractional) MIDI note number."""
    return A4_HZ * 2.0 ** ((np.asarray(midi, dtype=np.float64) - A4_MIDI) / 12)


def cents(f: np.ndarray | float, ref: np.ndarray | float) -> np.ndarray:
    """Interval from ``ref`` to ``f`` in cents (1200 per octave); NaN where either is non-positive."""
    f_arr, r_arr = np.asarray(f, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((f_arr > 0) & (r_arr > 0), 1200 * np.log2(f_arr / r_arr), np.nan)


def note_name(hz: float) -> str:
    """Nearest equal-tempered note name, e.g. ``note_name(261.6) == "C4"``."""
    if not hz > 0:
        raise ParameterError("invalid_parameter", f"A note needs a positive frequency, got {hz}.")
    midi = int(round(float(hz_to_midi(hz))))
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def note_to_hz(name: str) -> float:
    """Frequency of a note name such as ``"A4"``, ``"C#3"`` or ``"Bb2"``."""
    m = _NOTE_RE.match(name.strip())
    if not m:
        raise ParameterError("invalid_parameter", f"'{name}' is not a note name like A4, C#3 or Bb2.")
    letter, accidental, octave = m.group(1).upper(), m.group(2), int(m.group(3))
    semitone = NOTE_NAMES.index(letter) + {"#": 1, "b": -1, "": 0}[accidental]
    return float(midi_to_hz((octave + 1) * 12 + semitone))


_NOTE_RE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d)$")
