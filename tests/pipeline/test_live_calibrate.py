"""Choosing a live block from the machine: the smallest block converted in at most half its time, the
candidates worth trying, and ``live_too_slow`` before any audio when none is."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from autovoice.analysis import estimate_f0
from autovoice.errors import AutoVoiceError
from autovoice.pipeline.live import (
    AUTO_BLOCKS_MS,
    LiveConverter,
    LiveOptions,
    calibration_voice,
    choose_block,
    warm_converter,
)
from autovoice.pipeline.live.calibrate import CALIBRATION_BLOCKS, CANDIDATE_BUDGET_S, WARM_BLOCKS
from autovoice.profiles import VoiceProfile

SR = 16_000


class FakeTime:
    """Scripted seconds: only the engine below advances them, so the test does not depend on the load."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FixedCostStream:
    """An engine stream whose every window costs ``cost_s`` of scripted time (a fixed cost per block,
    like the real one)."""

    context_s = 0.02
    lookahead_s = 0.02

    def __init__(self, cost_s: float, clock: FakeTime) -> None:
        self.cost_s, self.clock = cost_s, clock

    def convert_window(self, x: np.ndarray, **_: Any) -> np.ndarray:
        self.clock.t += self.cost_s
        return np.asarray(x, dtype=np.float32).copy()


class FixedCostEngine:
    """A streaming engine whose streams are :class:`FixedCostStream` (on one scripted clock)."""

    name = "fixed-cost"

    def __init__(self, cost_s: float) -> None:
        self.cost_s = cost_s
        self.clock = FakeTime()

    def open_stream(self, profile: VoiceProfile, **_: Any) -> FixedCostStream:
        return FixedCostStream(self.cost_s, self.clock)


DIO = LiveOptions(f0_method="dio")  # ~1 ms a block: the engine's cost decides


def test_auto_is_the_default_and_numbers_are_checked() -> None:
    assert LiveOptions().block_ms == "auto"
    assert LiveOptions().block_is_auto
    assert LiveOptions.parse(block_ms="60").block_ms == 60
    assert LiveOptions.parse({"block_ms": "auto"}).block_is_auto
    for bad in (45, 10, 600, "fast", True, 40.5):
        with pytest.raises(AutoVoiceError) as err:
            LiveOptions.parse(block_ms=bad)
        assert err.value.code == "invalid_parameter"
        assert err.value.details["field"] == "block_ms"


def test_a_converter_needs_a_chosen_block(live_tone_profile: VoiceProfile) -> None:
    with pytest.raises(AutoVoiceError) as err:
        LiveConverter(live_tone_profile, sr=SR, options=DIO)
    assert err.value.code == "invalid_parameter"


def test_the_smallest_block_with_room_is_chosen_and_hopeless_ones_are_skipped(
    live_tone_profile: VoiceProfile,
) -> None:
    """16 ms a block: 20 ms blocks fail (> 10 ms), 30 ms ones cannot afford its median time (15 < 16),
    so 40 ms is tried next and chosen (16 ms <= 20 ms)."""
    engine = FixedCostEngine(0.016)
    choice = choose_block(live_tone_profile, sr=SR, options=DIO, engine=engine, timer=engine.clock)  # type: ignore[arg-type]
    assert [t.block_ms for t in choice.trials] == [20, 40]
    first, chosen = choice.trials
    assert not first.ok
    assert first.p99_ms == pytest.approx(16)
    assert first.blocks < CALIBRATION_BLOCKS  # stopped once two blocks had missed the budget
    assert chosen.ok
    assert chosen.p99_ms == pytest.approx(16)
    assert choice.block_ms == 40
    assert choice.latency_ms == pytest.approx(40 + 40 + 10 + 4)
    assert "20 ms blocks needed" in choice.reason
    assert "40 ms blocks" in choice.reason
    doc = choice.to_dict()
    assert doc["block_ms"] == 40
    assert [t["ok"] for t in doc["trials"]] == [False, True]
    # Every block measured, warm or timed, and no more: the 40 ms candidate stopped at the time budget.
    assert chosen.blocks == math.ceil(CANDIDATE_BUDGET_S / 0.016)
    assert choice.seconds == pytest.approx(0.016 * (2 * WARM_BLOCKS + first.blocks + chosen.blocks))


def test_a_machine_too_slow_for_every_block_is_told_before_streaming(
    live_tone_profile: VoiceProfile,
) -> None:
    """60 ms a block cannot fit half of any block up to 100 ms: 20 ms is measured, then the longest."""
    engine = FixedCostEngine(0.06)
    with pytest.raises(AutoVoiceError) as err:
        choose_block(live_tone_profile, sr=SR, options=DIO, engine=engine, timer=engine.clock)  # type: ignore[arg-type]
    assert err.value.code == "live_too_slow"
    assert err.value.caller_error  # exit 2 from the CLI
    trials = err.value.details["trials"]
    assert [t["block_ms"] for t in trials] == [20, AUTO_BLOCKS_MS[-1]]
    assert all(not t["ok"] and t["p99_ms"] == pytest.approx(60) for t in trials)
    assert "100 ms" in err.value.message


def test_calibration_voice_is_voiced_everywhere() -> None:
    y = calibration_voice(1.0, sr=SR)
    assert y.dtype == np.float32
    assert len(y) == SR
    assert 0.4 < np.abs(y).max() <= 0.5
    f0 = estimate_f0(y, sr=SR).f0
    assert (f0 > 0).mean() > 0.95
    assert 120 < np.median(f0[f0 > 0]) < 200


def test_warm_converter_chooses_on_the_real_converter(live_tone_profile: VoiceProfile) -> None:
    """FCPE and the world engine, measured for real: whatever this machine gives, the block chosen is
    the first candidate measured within half its time, and the stream runs at it."""
    try:
        conv = warm_converter(live_tone_profile, sr=SR, options=LiveOptions(pitch_shift=0))
    except AutoVoiceError as exc:  # an overloaded test machine may honestly be too slow
        code = exc.code
        assert code == "live_too_slow"
        return
    choice = conv.block_choice
    assert choice is not None
    assert conv.options.block_ms == choice.block_ms in AUTO_BLOCKS_MS
    assert conv.block_size == choice.block_ms * SR // 1000
    assert conv.latency.total_ms == pytest.approx(choice.latency_ms)
    assert choice.trials[-1].block_ms == choice.block_ms
    assert choice.trials[-1].ok
    assert all(not t.ok for t in choice.trials[:-1])
    assert choice.chosen.p99_ms <= 0.5 * choice.block_ms
    out = conv.process(calibration_voice(choice.block_ms / 1000, sr=SR))
    assert out.shape == (conv.block_size,)


def test_a_fixed_block_is_not_measured(live_tone_profile: VoiceProfile) -> None:
    conv = warm_converter(live_tone_profile, sr=SR, options=LiveOptions(block_ms=60, f0_method="dio"))
    assert conv.block_choice is None
    assert conv.options.block_ms == 60
