"""Analysis: F0 tracking, pitch units and vocal range. Pure functions ``f(y, *, sr, ...)``."""

from autovoice.analysis.f0 import F0_METHOD_NAMES, F0_METHODS, F0Method, F0Track, estimate_f0
from autovoice.analysis.pitch import cents, hz_to_midi, midi_to_hz, note_name, note_to_hz
from autovoice.analysis.vocal_range import VocalRange, sustained_f0, vocal_range

__all__ = [
    "F0_METHODS",
    "F0_METHOD_NAMES",
    "F0Method",
    "F0Track",
    "VocalRange",
    "cents",
    "estimate_f0",
    "hz_to_midi",
    "midi_to_hz",
    "note_name",
    "note_to_hz",
    "sustained_f0",
    "vocal_range",
]
