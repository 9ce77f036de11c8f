"""Deadlines for live streams: a late block is dropped, never queued (:class:`LiveSession`), under the
wall clock or a simulated one; and streaming a whole file through the live path (:func:`stream_array`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import numpy as np

from autovoice.pipeline.live.converter import LiveConverter, LiveStats


class Clock(Protocol):
    """Time for :class:`LiveSession`: the wall clock, or a simulated one for files."""

    def wait_until(self, t: float) -> None:
        """The worker is idle until ``t`` (a block's arrival)."""

    def now(self) -> float: ...

    def spent(self, seconds: float) -> None:
        """The worker just spent ``seconds`` converting."""


class WallClock:
    """The real clock: blocks arrive when they arrive; the time spent is already past."""

    def wait_until(self, t: float) -> None:
        return None

    def now(self) -> float:
        return time.perf_counter()

    def spent(self, seconds: float) -> None:
        return None


class SimulatedClock:
    """A clock for streaming a file "as a microphone would": block ``k`` arrives at ``(k + 1) * block``
    seconds of stream time, and the worker's time advances by the conversion times measured for real."""

    def __init__(self) -> None:
        self.t = 0.0

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def now(self) -> float:
        return self.t

    def spent(self, seconds: float) -> None:
        self.t += seconds


class UnhurriedClock:
    """A clock under which no block is ever late (every block is converted): for tests and for
    rendering a file through the live path on a machine too busy to keep time."""

    def __init__(self) -> None:
        self.t = 0.0

    def wait_until(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def spent(self, seconds: float) -> None:
        return None


class LiveSession:
    """A converter plus the deadline rule: each block must be converted before the next one arrives.

    ``handle(block, arrival)``: skip the block if it is already past its deadline (``arrival + block``),
    else convert it and throw the result away if it finished after the deadline.
    """

    def __init__(self, converter: LiveConverter, clock: Clock | None = None) -> None:
        self.converter = converter
        self.clock = clock or WallClock()
        self.block_s = converter.latency.block / converter.sr

    def handle(self, block: np.ndarray, *, arrival: float) -> np.ndarray:
        conv, clock = self.converter, self.clock
        clock.wait_until(arrival)
        deadline = arrival + self.block_s
        if clock.now() >= deadline:
            return conv.skip(block)
        t0 = time.perf_counter()
        out = conv.process(block)
        clock.spent(time.perf_counter() - t0)
        if clock.now() > deadline:
            return conv.drop_last()
        return out


def blocks_of(y: np.ndarray, block: int) -> Iterator[np.ndarray]:
    """``y`` cut into blocks of ``block`` samples, the last one padded with silence."""
    for i in range(0, len(y), block):
        b = y[i : i + block]
        yield b if len(b) == block else np.pad(b, (0, block - len(b)))


def stream_array(
    y: np.ndarray,
    converter: LiveConverter,
    *,
    clock: Clock | None = None,
    on_block: Callable[[int, LiveStats], None] | None = None,
) -> tuple[np.ndarray, LiveStats]:
    """Stream mono ``y`` (at the converter's rate) through the live path as a microphone would.

    Blocks arrive every block length of (simulated, by default) time and go through the deadline
    rule of :class:`LiveSession`; silence blocks are streamed after the end so the whole input comes
    out. Returns the output *aligned with the input* (the constant delay removed; same length as
    ``y``) and the stream's statistics.
    """
    session = LiveSession(converter, clock or SimulatedClock())
    lat = converter.latency
    extra = int(math.ceil(lat.delay / lat.block))
    source: Iterable[np.ndarray] = (
        list(blocks_of(np.asarray(y, np.float32), lat.block)) + [np.zeros(lat.block, np.float32)] * extra
    )
    outs = []
    for k, b in enumerate(source):
        outs.append(session.handle(b, arrival=(k + 1) * session.block_s))
        if on_block is not None:
            on_block(k, converter.stats())
    out = np.concatenate(outs)[lat.delay : lat.delay + len(y)]
    return out, converter.stats()
