from __future__ import annotations

import numpy as np
import pytest

from autovoice.audio import loudness_lufs
from autovoice.errors import ParameterError
from autovoice.pipeline import remix, true_peak_dbtp

SR = 44_100


def _noise(seconds: float, channels: int, level: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((channels, int(SR * seconds))) * level).astype(
        np.float32
    )


def test_remix_keeps_layout_and_hits_loudness() -> None:
    vocals = _noise(3.0, 1, 0.05)[0]
    acc = _noise(3.0, 2, 0.05, seed=1)
    out = remix(vocals, acc, sr=SR, channels=2, length=SR * 3, target_lufs=-20.0)
    assert out.audio.shape == (2, SR * 3)
    assert loudness_lufs(out.audio, sr=SR) == pytest.approx(-20.0, abs=0.2)
    assert out.true_peak_dbtp <= -1.0 + 1e-6


def test_true_peak_limit_wins_over_loudness() -> None:
    vocals = _noise(3.0, 1, 0.3)[0]
    out = remix(vocals, None, sr=SR, channels=1, length=SR * 3, target_lufs=0.0)
    assert true_peak_dbtp(out.audio, sr=SR) <= -1.0 + 0.05
    assert out.gain_db < 0


def test_pads_or_trims_to_the_input_length() -> None:
    out = remix(_noise(1.0, 1, 0.1)[0], None, sr=SR, channels=2, length=SR * 2, target_lufs=None)
    assert out.audio.shape == (2, SR * 2)
    assert np.all(out.audio[:, SR + 10 :] == 0)


def test_bad_gain() -> None:
    with pytest.raises(ParameterError):
        remix(_noise(1.0, 1, 0.1)[0], None, sr=SR, channels=1, length=SR, vocal_gain_db=40)
