"""Choosing a live stream's block from the machine (:func:`choose_block`), and opening a stream that is
ready to run (:func:`warm_converter`).

A block must be converted before the next one arrives, and a conversion's time is mostly a fixed
cost per block (the pitch tracker's window, the engine's per-window work), so a block that is too
short for the machine drops audio while a longer one only adds latency. ``block_ms="auto"`` measures
instead of guessing: a second or so of synthetic voiced audio (:func:`calibration_voice`) goes through
the real converter, with the stream's own options, at the smallest candidate block
(:data:`AUTO_BLOCKS_MS`) first; a block is chosen when the 99th percentile of its measured times
stays within :data:`AUTO_MAX_SHARE` of its length. When a candidate is too slow, the next one tried
is the smallest whose budget covers its median time (a longer block never costs less), so two or
three candidates are usually enough. When even the longest candidate cannot keep up, the
stream does not start: ``live_too_slow`` says so with the times measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from autovoice.errors import ConflictError
from autovoice.pipeline.live.converter import LiveConverter
from autovoice.pipeline.live.options import (
    AUTO_BLOCKS_MS,
    AUTO_MAX_SHARE,
    BlockChoice,
    BlockTrial,
    LiveOptions,
)

if TYPE_CHECKING:
    from autovoice.config import Settings
    from autovoice.engines.base import Engine
    from autovoice.profiles.profile import VoiceProfile

#: Blocks timed per candidate (after :data:`WARM_BLOCKS` untimed ones): with 50 the p99 lies between
#: the two slowest blocks, a steadier estimate than the slowest of a few.
CALIBRATION_BLOCKS = 50
#: Untimed blocks first: a new block length allocates on its first calls.
WARM_BLOCKS = 3
#: A candidate stops being timed after this long once it has :data:`MIN_CALIBRATION_BLOCKS` (slow
#: machines would otherwise spend seconds on it).
CANDIDATE_BUDGET_S = 0.6
MIN_CALIBRATION_BLOCKS = 8


def calibration_voice(seconds: float, *, sr: int) -> np.ndarray:
    """``seconds`` of a synthetic voiced sound at ``sr``: a harmonic series (1/k, up to 5 kHz) on a
    gliding, vibrato F0 around 150 Hz with a syllable-rate level change and a little breath noise, so
    the tracker and the engine take their voiced (costlier) paths. float32 mono, peak about -6 dBFS."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = 150.0 * 2.0 ** ((3.0 * np.sin(2 * np.pi * 0.7 * t) + 0.3 * np.sin(2 * np.pi * 5.5 * t)) / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(n)
    top = min(5_000.0, 0.45 * sr)
    for k in range(1, int(top // f0.max()) + 1):
        y += np.sin(k * phase) / k
    y *= 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t) ** 2
    y += 0.01 * np.random.default_rng(0).standard_normal(n)
    return np.asarray(0.5 * y / np.max(np.abs(y)), dtype=np.float32)


def measure_block(
    profile: VoiceProfile,
    block_ms: int,
    *,
    sr: int,
    options: LiveOptions,
    audio: np.ndarray,
    device: str = "cpu",
    settings: Settings | None = None,
    engine: Engine | None = None,
    max_share: float = AUTO_MAX_SHARE,
    timer: Callable[[], float] = time.perf_counter,
) -> BlockTrial:
    """Conversion times of a throwaway converter at ``block_ms`` on ``audio`` (at ``sr``): after
    :data:`WARM_BLOCKS` untimed blocks, up to :data:`CALIBRATION_BLOCKS` timed ones; it stops early when
    two blocks already exceeded the budget (the p99 cannot pass) or :data:`CANDIDATE_BUDGET_S` is spent.
    ``timer`` gives the time in seconds (tests script it)."""
    conv = LiveConverter(
        profile,
        sr=sr,
        options=options.with_block(block_ms),
        engine=engine,
        device=device,
        settings=settings,
    )
    block = conv.block_size
    need = (WARM_BLOCKS + CALIBRATION_BLOCKS) * block
    x = np.resize(audio, need) if len(audio) < need else audio
    budget_ms = max_share * block_ms
    times: list[float] = []
    started = 0.0
    for i in range(WARM_BLOCKS + CALIBRATION_BLOCKS):
        b = x[i * block : (i + 1) * block]
        t0 = timer()
        conv.process(b)
        spent = timer() - t0
        if i < WARM_BLOCKS:
            started = timer()
            continue
        times.append(1000.0 * spent)
        over = sum(t > budget_ms for t in times)
        if over >= 2 or (len(times) >= MIN_CALIBRATION_BLOCKS and timer() - started > CANDIDATE_BUDGET_S):
            break
    return BlockTrial(
        block_ms=block_ms,
        latency_ms=conv.latency.total_ms,
        blocks=len(times),
        p50_ms=float(np.percentile(times, 50)),
        p99_ms=float(np.percentile(times, 99)),
        max_share=max_share,
    )


def choose_block(
    profile: VoiceProfile,
    *,
    sr: int,
    options: LiveOptions | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
    engine: Engine | None = None,
    candidates: tuple[int, ...] | None = None,
    max_share: float | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> BlockChoice:
    """The smallest of ``candidates`` (ms; default :data:`AUTO_BLOCKS_MS`) whose measured p99 conversion
    time is at most ``max_share`` (default :data:`AUTO_MAX_SHARE`) of the block, for a stream with
    ``options`` into ``profile`` (see the module docstring). ``timer`` gives the time in seconds.

    Raises
    ------
    ConflictError
        ``live_too_slow``: even the longest candidate needs more than ``max_share`` of its time here;
        the details hold every trial.
    ParameterError
        As :class:`LiveConverter` (bad rate, engine that cannot stream, auto key without a range...).
    """
    opts = options or LiveOptions()
    max_share = AUTO_MAX_SHARE if max_share is None else max_share
    ordered = sorted(candidates or AUTO_BLOCKS_MS)
    # The models load (and every option is checked) before the clock starts.
    LiveConverter(
        profile, sr=sr, options=opts.with_block(ordered[0]), engine=engine, device=device, settings=settings
    )
    t_start = timer()
    audio = calibration_voice((WARM_BLOCKS + CALIBRATION_BLOCKS) * ordered[-1] / 1000.0, sr=sr)
    trials: list[BlockTrial] = []
    i = 0
    while i < len(ordered):
        trial = measure_block(
            profile,
            ordered[i],
            sr=sr,
            options=opts,
            audio=audio,
            device=device,
            settings=settings,
            engine=engine,
            max_share=max_share,
            timer=timer,
        )
        trials.append(trial)
        if trial.ok:
            return BlockChoice(
                block_ms=trial.block_ms,
                latency_ms=trial.latency_ms,
                trials=tuple(trials),
                seconds=timer() - t_start,
                max_share=max_share,
                candidates=tuple(ordered),
            )
        # The next candidate worth trying has a budget at least this one's typical (median) time: a
        # longer block never costs less, and one hiccup in a few blocks should not skip good candidates.
        i = next(
            (j for j in range(i + 1, len(ordered)) if max_share * ordered[j] >= trial.p50_ms),
            len(ordered) - 1 if i < len(ordered) - 1 else len(ordered),
        )
    last = trials[-1]
    raise ConflictError(
        "live_too_slow",
        f"Live conversion cannot keep up on this machine: even {last.block_ms} ms blocks took "
        f"{last.p99_ms:.0f} ms (p99), more than {100 * max_share:.0f} % of the block. Try the fast preset "
        "or the dio pitch tracker, or a less busy machine.",
        {
            "max_share": max_share,
            "largest_block_ms": ordered[-1],
            "trials": [t.to_dict() for t in trials],
        },
    )


def warm_converter(
    profile: VoiceProfile,
    *,
    sr: int,
    options: LiveOptions | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
) -> LiveConverter:
    """A :class:`LiveConverter` ready to stream: models loaded, first calls paid for, and with
    ``block_ms="auto"`` the block chosen by :func:`choose_block` (kept on ``converter.block_choice``).

    With a fixed block, a throwaway converter with the same options converts two silent blocks first
    (the first call of a tracker allocates, which would make the stream's first block late).

    Raises
    ------
    ConflictError
        ``live_too_slow`` (auto block only).
    ParameterError
        As :class:`LiveConverter`.
    """
    opts = options or LiveOptions()
    choice: BlockChoice | None = None
    if opts.block_is_auto:
        choice = choose_block(profile, sr=sr, options=opts, device=device, settings=settings)
        opts = opts.with_block(choice.block_ms)
    else:
        scratch = LiveConverter(profile, sr=sr, options=opts, device=device, settings=settings)
        for _ in range(2):
            scratch.process(np.zeros(scratch.block_size, np.float32))
    conv = LiveConverter(profile, sr=sr, options=opts, device=device, settings=settings)
    conv.block_choice = choice
    return conv
