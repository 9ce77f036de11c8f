"""Live conversion: fixed blocks in, as many samples out, at a latency that never grows.

A :class:`LiveConverter` takes blocks of ``block`` samples (a microphone callback, WebSocket frames, or a
file cut into blocks) and returns one converted block for each. Every block:

1. **Pitch.** The F0 tracker (FCPE by default) runs over the block, the lookahead and 100 ms before. Frames at
   least ``lookahead`` before the newest sample are *final*: they are stored and never re-estimated,
   so the pitch marks of consecutive blocks agree. Frames in the lookahead are provisional.
2. **Pitch plan.** The target F0 is the source's moved by a manual shift, or by the auto key: the
   distance from the source's median pitch to the profile's, chosen once :data:`AUTO_KEY_FRAMES`
   voiced frames have been heard and then held (until then it follows the median heard so far).
3. **Engine.** The engine's stream (:class:`~autovoice.engines.base.EngineStream`) converts a window
   made of ``context`` past samples, the span to output and the lookahead; it carries its own state
   (the world engine's running source statistics, formant warp and PSOLA phase) from block to block.
4. **Join.** SOLA: the new span's start is searched within ``sola_search`` samples for the offset
   that best continues the previous block's tail, and the two are crossfaded over ``crossfade``
   samples (equal-gain linear fades).

The output is therefore the conversion of the input delayed by exactly ``lookahead + crossfade +
sola_search`` samples; with the block that has to be collected first, the algorithmic latency is
``block + lookahead + crossfade + sola_search`` (:attr:`LiveConverter.latency`), whatever happens.

**Late blocks are dropped, never queued.** :class:`LiveSession` gives each block a deadline, its
arrival plus one block: when the worker picks up a block already past its deadline, the block is
skipped (its input still feeds the history); when its conversion finishes after the deadline, its
output is thrown away. Either way the slot plays silence (the previous tail fades out, the next
block fades in) and the drop is counted in :class:`LiveStats`. A slow machine loses blocks; it
never accumulates delay.

Engines opt in to streaming by implementing :class:`~autovoice.engines.base.StreamingEngine`
(``open_stream(profile, *, sr, preset, options) -> EngineStream``); the ``world`` engine streams through
:class:`~autovoice.engines.world.stream.WorldStream`. Others get ``engine_cannot_stream``.

Differences from the offline conversion of the same file: the source statistics and the formant warp
are learned as the voice is heard (a prior equal to the target's own statistics, i.e. no timbre change,
weighted as :data:`~autovoice.engines.world.stream.PRIOR_FRAMES` frames, fades out); the auto key uses
the speech rule (exact shift, no whole-phrase octave moves); the frame period is 10 ms whatever the preset.

The package: :mod:`.options` (what a stream may choose), :mod:`.converter` (blocks in, blocks out) and
:mod:`.clocks` (deadlines: drop, never queue; streaming a file).
"""

from __future__ import annotations

from autovoice.pipeline.live.calibrate import calibration_voice, choose_block, warm_converter
from autovoice.pipeline.live.clocks import (
    Clock,
    LiveSession,
    SimulatedClock,
    UnhurriedClock,
    WallClock,
    blocks_of,
    stream_array,
)
from autovoice.pipeline.live.converter import (
    LiveConverter,
    LiveLatency,
    LiveStats,
    open_engine_stream,
    streaming_engines,
)
from autovoice.pipeline.live.options import (
    AUTO_BLOCK,
    AUTO_BLOCKS_MS,
    AUTO_KEY_FRAMES,
    AUTO_MAX_SHARE,
    F0_CONTEXT_S,
    LIVE_F0_METHODS,
    LIVE_SAMPLE_RATES,
    BlockChoice,
    BlockTrial,
    LiveF0Method,
    LiveOptions,
    check_sample_rate,
)

__all__ = [
    "AUTO_BLOCK",
    "AUTO_BLOCKS_MS",
    "AUTO_KEY_FRAMES",
    "AUTO_MAX_SHARE",
    "F0_CONTEXT_S",
    "LIVE_F0_METHODS",
    "LIVE_SAMPLE_RATES",
    "BlockChoice",
    "BlockTrial",
    "Clock",
    "LiveConverter",
    "LiveF0Method",
    "LiveLatency",
    "LiveOptions",
    "LiveSession",
    "LiveStats",
    "SimulatedClock",
    "UnhurriedClock",
    "WallClock",
    "blocks_of",
    "calibration_voice",
    "check_sample_rate",
    "choose_block",
    "open_engine_stream",
    "stream_array",
    "streaming_engines",
    "warm_converter",
]
