"""The live pitch tracker: FCPE's int8 copy on the CPU, the same tone heard at every stream rate."""

from __future__ import annotations

import numpy as np

from tests.support import voice_like


def test_the_live_tracker_runs_the_int8_copy_and_hears_the_note() -> None:
    """A 220 Hz voice-like tone through the live tracker at 16 and 48 kHz: 220 Hz within 10 cents."""
    from autovoice.models.fcpe import int8_available
    from autovoice.pipeline.live.pitch import LiveTracker

    for sr in (16_000, 48_000):
        tracker = LiveTracker("fcpe", sr=sr, device="cpu")
        assert tracker.int8 == int8_available()
        y = (0.4 * voice_like(np.full(int(0.18 * sr), 220.0), sr=sr, seed=1)).astype(np.float32)
        f0 = tracker(y, n_frames=18)
        assert f0.shape == (18,)
        voiced = f0[f0 > 0]
        assert len(voiced) >= 12
        assert np.median(np.abs(1200 * np.log2(voiced / 220.0))) < 10
