from __future__ import annotations

import numpy as np
import pytest

from autovoice.analysis import cents, hz_to_midi, midi_to_hz, note_name, note_to_hz
from autovoice.errors import ParameterError


@pytest.mark.parametrize(
    ("hz", "name"),
    [(440.0, "A4"), (261.63, "C4"), (110.0, "A2"), (466.16, "A#4"), (27.5, "A0"), (4186.0, "C8")],
)
def test_note_names(hz: float, name: str) -> None:
    assert note_name(hz) == name
    assert abs(cents(note_to_hz(name), hz)) < 1


def test_flats_and_lowercase() -> None:
    assert note_to_hz("Bb2") == pytest.approx(note_to_hz("A#2"))
    assert note_to_hz("c4") == pytest.approx(261.6256, abs=1e-3)


def test_midi_round_trip_and_cents() -> None:
    assert float(hz_to_midi(440.0)) == 69
    assert float(midi_to_hz(57)) == pytest.approx(220.0)
    assert float(cents(880.0, 440.0)) == pytest.approx(1200.0)
    assert np.isnan(cents(0.0, 440.0))
    assert np.isnan(hz_to_midi(0.0))


@pytest.mark.parametrize("bad", ["H4", "A", "440", ""])
def test_bad_note_names(bad: str) -> None:
    with pytest.raises(ParameterError):
        note_to_hz(bad)


def test_note_name_needs_positive_frequency() -> None:
    with pytest.raises(ParameterError):
        note_name(0.0)
