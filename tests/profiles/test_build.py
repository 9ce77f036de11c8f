from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import cents
from autovoice.errors import AudioError, ParameterError
from autovoice.pipeline.enroll import build_profile
from tests.support import MALE, harmonic_tone, speaker_files


def test_too_little_voice_is_refused() -> None:
    y = np.concatenate([harmonic_tone(200.0, sr=16_000, seconds=2.0), np.zeros(16_000 * 3, np.float32)])
    with pytest.raises(AudioError) as err:
        build_profile([(y, 16_000)], name="short", engines=[])
    assert err.value.code in ("insufficient_voiced_audio", "no_voiced_audio")


def test_no_samples() -> None:
    with pytest.raises(ParameterError) as err:
        build_profile([], name="x")
    assert err.value.code == "no_samples"


@pytest.mark.shared_data
def test_profile_from_real_speech(speech_dir: Path) -> None:
    files = speaker_files(MALE[0])[:5]
    stages: list[str] = []
    profile = build_profile(files, name="m1", progress=lambda f, s: stages.append(s))
    q, r = profile.quality, profile.vocal_range
    assert q.n_samples == 5
    assert q.duration_s > 25
    assert 0.3 * q.duration_s < q.voiced_s < q.duration_s
    assert q.snr_db > 15  # LibriSpeech is clean read speech
    assert profile.embedding.shape == (256,)
    assert np.linalg.norm(profile.embedding) == pytest.approx(1.0, abs=1e-4)
    # An adult male speaking voice: median roughly 85..180 Hz, range within E1..C6.
    assert 85 < r.median_hz < 180
    assert 40 < r.lowest_hz < r.tessitura_low_hz < r.median_hz < r.tessitura_high_hz < r.highest_hz < 1000
    assert abs(cents(r.highest_hz, r.lowest_hz)) > 600
    assert any(k.startswith("world.") for k in profile.features)
    assert stages[0] == "load"
    assert stages[-1] == "done"
    assert profile.sample_names == [f.name for f in files]
    assert "under" not in " ".join(q.warnings) or q.voiced_s < 30
