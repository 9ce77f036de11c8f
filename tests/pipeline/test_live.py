"""Live conversion: length and constant delay, clean joins, the pitch plan, honest stats, drops not drift."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from autovoice.analysis import cents, estimate_f0
from autovoice.errors import AutoVoiceError
from autovoice.pipeline.live import (
    AUTO_KEY_FRAMES,
    LiveConverter,
    LiveOptions,
    SimulatedClock,
    UnhurriedClock,
    check_sample_rate,
    open_engine_stream,
    stream_array,
)
from autovoice.profiles import VoiceProfile
from tests.support import FEMALE, MALE, SPEECH, breathy_voice, speaker_files

SR = 16_000


#: For the tests whose engine is a stand-in: the cheapest tracker (its F0 is not used).
CHEAP = LiveOptions(f0_method="dio", block_ms=40)


class ScriptedClock(SimulatedClock):
    """Simulated time in which conversion ``i`` takes ``cost(i)`` seconds, whatever the machine's load."""

    def __init__(self, cost: Any) -> None:
        super().__init__()
        self.cost, self.i = cost, 0

    def spent(self, seconds: float) -> None:
        self.t += self.cost(self.i)
        self.i += 1


class PassThrough:
    """An engine stream that returns its window unchanged (optionally after sleeping)."""

    context_s = 0.02
    lookahead_s = 0.02

    def __init__(self, sleep_s: Any = 0.0) -> None:
        self.sleep_s = sleep_s
        self.calls = 0

    def convert_window(self, x: np.ndarray, **_: Any) -> np.ndarray:
        delay = self.sleep_s(self.calls) if callable(self.sleep_s) else self.sleep_s
        self.calls += 1
        if delay:
            time.sleep(delay)
        return np.asarray(x, dtype=np.float32).copy()


def test_latency_is_block_plus_lookahead_plus_crossfade(live_tone_profile: VoiceProfile) -> None:
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough())
    lat = conv.latency
    assert conv.block_size == lat.block == 640  # 40 ms
    assert lat.total_ms == pytest.approx(40 + 40 + 10 + 4)
    assert lat.to_dict()["total_ms"] == pytest.approx(94.0)
    conv = LiveConverter(
        live_tone_profile,
        sr=48_000,
        options=LiveOptions(block_ms=20, crossfade_ms=5, sola_search_ms=0),
        stream=PassThrough(),
    )
    assert conv.block_size == 960
    assert conv.latency.total_ms == pytest.approx(20 + 40 + 5)


def test_pass_through_stream_comes_out_exactly_delayed(live_tone_profile: VoiceProfile) -> None:
    """With an engine that changes nothing, the live path returns the input itself: same length, the
    constant delay removed, and the joins (SOLA + crossfade) invisible."""
    rng = np.random.default_rng(3)
    y = breathy_voice(np.full(int(1.3 * SR), 180.0), sr=SR) + 0.05 * rng.standard_normal(
        int(1.3 * SR)
    ).astype(np.float32)
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough())
    out, stats = stream_array(y, conv, clock=UnhurriedClock())
    assert out.shape == y.shape
    assert out.dtype == np.float32
    b = conv.block_size
    # The first block fades in from silence; after it the output is the input, sample for sample.
    np.testing.assert_allclose(out[b:], np.clip(y[b:], -1, 1), atol=1e-5)
    n_blocks = -(-len(y) // b) + -(-conv.latency.delay // b)
    assert stats.blocks == stats.converted == n_blocks
    assert stats.dropped == stats.skipped == stats.late == 0
    assert stats.latency_ms == pytest.approx(94.0)


def test_world_stream_keeps_length_pitch_and_has_no_clicks(live_tone_profile: VoiceProfile) -> None:
    """A voice gliding 150 -> 190 Hz, shifted +5 semitones: the output follows the planned pitch, and
    no sample-to-sample jump at a block join exceeds the output's own largest jump elsewhere."""
    n = int(1.5 * SR)
    f0 = np.geomspace(150.0, 190.0, n)
    y = breathy_voice(f0, sr=SR)
    conv = LiveConverter(live_tone_profile, sr=SR, options=LiveOptions(block_ms=40, pitch_shift=5))
    out, stats = stream_array(y, conv, clock=UnhurriedClock())
    assert out.shape == y.shape
    assert stats.dropped == 0
    assert stats.converted == stats.blocks
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= 1.0

    got = estimate_f0(out, sr=SR)
    frames = np.arange(len(got.f0))
    want = np.interp(frames * 0.01 * SR, np.arange(n), f0) * 2 ** (5 / 12)
    ok = (got.f0 > 0) & (frames > 20) & (frames < len(frames) - 5)
    assert ok.mean() > 0.7
    assert np.median(np.abs(cents(got.f0[ok], want[ok]))) < 15

    jumps = np.abs(np.diff(out[SR // 4 :]))
    b, d = conv.block_size, conv.latency.delay
    starts = np.arange(b, len(out), b) - d - SR // 4  # where blocks join, in the trimmed output
    near = np.zeros(len(jumps), bool)
    for s in starts[(starts > 0) & (starts < len(jumps))]:
        near[
            max(s - conv.latency.crossfade - 8, 0) : s + conv.latency.crossfade + conv.latency.sola_search + 8
        ] = True
    assert near.any()
    assert (~near).any()
    assert jumps[near].max() <= 1.05 * jumps[~near].max()


def test_auto_key_is_chosen_once_and_held(live_tone_profile: VoiceProfile) -> None:
    """A source a fifth below the profile: the shift settles near +7 and stays there while the source
    later moves up a whole octave."""
    assert live_tone_profile.vocal_range is not None
    target = live_tone_profile.vocal_range.median_hz
    n1, n2 = int(1.5 * SR), int(1.0 * SR)
    f0 = np.concatenate([np.full(n1, target * 2 ** (-7 / 12)), np.full(n2, target * 2 ** (5 / 12))])
    opts = LiveOptions(block_ms=40, auto_key=True, f0_method="dio")
    conv = LiveConverter(live_tone_profile, sr=SR, options=opts)
    shifts = []
    stream_array(
        breathy_voice(f0, sr=SR),
        conv,
        clock=UnhurriedClock(),
        on_block=lambda k, s: shifts.append(s.pitch_shift),
    )
    decided = [s for s in shifts if s is not None]
    assert decided
    assert abs(decided[-1] - 7.0) < 0.3
    # Once AUTO_KEY_FRAMES voiced frames are heard (~0.6 s with the delay), the shift never moves again.
    held_from = int(np.ceil((AUTO_KEY_FRAMES * 0.01 + 0.2) / 0.04))
    assert len(set(decided[held_from:])) == 1


def test_a_slow_engine_drops_blocks_instead_of_drifting(live_tone_profile: VoiceProfile) -> None:
    """Every third block takes 1.5 blocks' time: those blocks (and any block waiting behind them)
    are dropped and play silence; every other block comes out at the same constant delay."""
    y = breathy_voice(np.full(int(1.6 * SR), 200.0), sr=SR)
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough())
    out, stats = stream_array(y, conv, clock=ScriptedClock(lambda i: 0.06 if i % 3 == 1 else 0.01))
    assert out.shape == y.shape
    b = conv.block_size
    assert stats.dropped > 0
    assert stats.late > 0
    assert stats.converted + stats.dropped == stats.blocks
    # Each output block is either silent (dropped; at most a fading tail at its start) or the input.
    d = conv.latency.delay
    played = silent = 0
    for k in range(1, stats.blocks):
        lo, hi = k * b - d, (k + 1) * b - d  # block k's slot in the trimmed output
        if lo < b or hi > len(y):
            continue
        c = conv.latency.crossfade
        body_out, body_in = out[lo + c : hi], y[lo + c : hi]
        if np.abs(body_out).max() == 0:
            silent += 1
        else:
            np.testing.assert_allclose(body_out, body_in, atol=1e-5)  # no drift: same delay as ever
            played += 1
    assert silent > 0
    assert played > 0
    assert silent <= stats.dropped
    assert stats.late == stats.dropped  # nothing waited behind a late block: none was skipped


def test_stats_measure_the_real_processing_time(live_tone_profile: VoiceProfile) -> None:
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough(0.008))
    _, stats = stream_array(np.zeros(SR // 2, np.float32), conv, clock=UnhurriedClock())
    assert stats.processing_ms_p50 is not None
    assert stats.processing_ms_p50 >= 8.0
    assert stats.processing_ms_p99 is not None
    assert stats.processing_ms_max is not None
    assert stats.processing_ms_p50 <= stats.processing_ms_p99 <= stats.processing_ms_max
    assert stats.p99_share == pytest.approx(stats.processing_ms_p99 / 40.0)


def test_gains_and_pitch_change_while_streaming(live_tone_profile: VoiceProfile) -> None:
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough())
    x = breathy_voice(np.full(conv.block_size, 200.0), sr=SR)
    for _ in range(4):
        conv.process(x)
    before = np.abs(conv.process(x)).max()
    conv.configure(output_gain_db=-20.0)
    after = np.abs(conv.process(x)).max()
    assert after == pytest.approx(before / 10, rel=0.05)
    conv.configure(pitch_shift=3)
    assert conv.stats().pitch_shift == 3.0


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"block_ms": 45}, "invalid_parameter"),
        ({"block_ms": 10}, "invalid_parameter"),
        ({"pitch_shift": 30}, "invalid_pitch_shift"),
        ({"pitch_shift": 2, "auto_key": True}, "invalid_parameter"),
        ({"engine": "nope"}, "unknown_engine"),
        ({"f0_method": "yin"}, "invalid_f0_method"),
        ({"preset": "best"}, "invalid_preset"),
        ({"colour": "red"}, "invalid_parameter"),
        ({"engine_options": {"knn_k": 999}}, "invalid_engine_options"),
    ],
)
def test_bad_options_are_refused_with_a_code(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(AutoVoiceError) as err:
        LiveOptions.parse(fields)
    assert err.value.code == code


def test_bad_rates_blocks_and_engines_are_refused(live_tone_profile: VoiceProfile) -> None:
    with pytest.raises(AutoVoiceError) as err:
        check_sample_rate(22_050)
    assert err.value.code == "invalid_sample_rate"
    conv = LiveConverter(live_tone_profile, sr=SR, options=CHEAP, stream=PassThrough())
    for bad in (np.zeros(100, np.float32), np.full(conv.block_size, np.nan, np.float32)):
        with pytest.raises(AutoVoiceError) as err:
            conv.process(bad)
        assert err.value.code == "invalid_block"

    class Offline:
        name = "offline-only"

    with pytest.raises(AutoVoiceError) as err:
        open_engine_stream(Offline(), live_tone_profile, sr=SR, preset="balanced", options={})  # type: ignore[arg-type]
    assert err.value.code == "engine_cannot_stream"
    assert "world" in err.value.details["streaming_engines"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_streamed_speech_matches_the_offline_conversion() -> None:
    """A male utterance into a female profile: the live result is about as close to the profile as
    the offline conversion, at the same pitch."""
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    from autovoice.audio import load, resample
    from autovoice.metrics.similarity import cosine_similarity, speaker_embedding
    from autovoice.pipeline import convert_speech
    from autovoice.pipeline.enroll import build_profile

    profile = build_profile(speaker_files(FEMALE[2])[:3], name="target")
    y, sr = load(speaker_files(MALE[0])[6], mono=True)
    y = resample(y, orig_sr=sr, target_sr=SR)[: 7 * SR]  # 7 s: enough for the embedding, quick to stream
    offline, shift = convert_speech(y, sr=SR, profile=profile)
    conv = LiveConverter(profile, sr=SR, options=LiveOptions(block_ms=40, pitch_shift=round(shift, 2)))
    live, stats = stream_array(y, conv, clock=UnhurriedClock())
    assert stats.dropped == 0
    sim_off = cosine_similarity(speaker_embedding(offline, sr=SR), profile.embedding)
    sim_live = cosine_similarity(speaker_embedding(live, sr=SR), profile.embedding)
    sim_src = cosine_similarity(speaker_embedding(y, sr=SR), profile.embedding)
    assert sim_live > sim_src + 0.02
    assert sim_live > sim_off - 0.06
    f_off, f_live = estimate_f0(offline, sr=SR).f0, estimate_f0(live, sr=SR).f0
    both = (f_off > 0) & (f_live > 0)
    assert np.median(np.abs(cents(f_live[both], f_off[both]))) < 20
