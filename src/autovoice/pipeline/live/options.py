"""What a live stream may choose (:class:`LiveOptions`) and the rates it may run at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autovoice.engines.base import Preset
from autovoice.errors import ParameterError

#: Pitch trackers a live stream can run: ``dio`` (WORLD's DIO refined by StoneMask: ~1 ms a block, no
#: model) and the F0 methods of :data:`autovoice.analysis.f0.F0_METHODS`.
LiveF0Method = Literal["dio", "fcpe", "world", "crepe", "crepe-tiny"]
LIVE_F0_METHODS: tuple[str, ...] = get_args(LiveF0Method)
#: Sample rates a live stream may run at (10 ms must be a whole number of samples).
LIVE_SAMPLE_RATES: tuple[int, ...] = (16_000, 24_000, 32_000, 44_100, 48_000)
#: Audio (s) the F0 tracker sees before a block's newly final frames (its cost grows with the window).
F0_CONTEXT_S = 0.1
#: Voiced frames heard before the auto key's shift is fixed.
AUTO_KEY_FRAMES = 100
#: Frames quieter than the loudest frame heard so far by this many dB are unvoiced.
SILENCE_DB = 50.0
#: Processing times (per converted block) kept for the percentiles in :class:`LiveStats`.
TIMING_HISTORY = 20_000
#: ``block_ms`` value that asks for the block to be chosen by measuring the machine.
AUTO_BLOCK = "auto"
#: Shortest and longest block a stream may use, ms.
BLOCK_MS_MIN, BLOCK_MS_MAX = 20, 500
#: Blocks ``block_ms="auto"`` chooses from, ms, shortest first (the algorithmic latency is the block
#: plus 54 ms at the default lookahead and join).
AUTO_BLOCKS_MS: tuple[int, ...] = (20, 30, 40, 60, 80, 100)
#: Largest share of a block that the 99th percentile of its conversion times may take: the other half
#: is the margin for what a short measurement does not see (other programs, the sound device, GC).
AUTO_MAX_SHARE = 0.5


class LiveOptions(BaseModel):
    """A live stream's choices. Every field has a default; :meth:`parse` validates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = Field(default="world", description="Conversion engine; it must be able to stream.")
    preset: Preset = Field(default="balanced", description="The engine's preset: fast, balanced or quality.")
    f0_method: LiveF0Method = Field(
        default="fcpe", description="Pitch tracker run on every block: dio, or one of the F0 methods."
    )
    pitch_shift: float | None = Field(
        default=None, ge=-24.0, le=24.0, allow_inf_nan=False, description="Semitones (-24..24)."
    )
    auto_key: bool = Field(default=False, description="Move the voice's median pitch onto the profile's.")
    block_ms: int | Literal["auto"] = Field(
        default="auto",
        description="Block length, ms (a multiple of 10, 20..500), or 'auto': the smallest block this "
        "machine converts in at most half its time, measured when the stream starts.",
    )
    lookahead_ms: int = Field(
        default=40, ge=20, le=200, description="Audio after a block the tracker and engine wait for, ms."
    )
    crossfade_ms: float = Field(default=10.0, ge=2.0, le=50.0, description="Crossfade at block joins, ms.")
    sola_search_ms: float = Field(
        default=4.0, ge=0.0, le=20.0, description="How far SOLA searches for the best join, ms."
    )
    input_gain_db: float = Field(default=0.0, ge=-40.0, le=24.0, description="Gain before conversion, dB.")
    output_gain_db: float = Field(default=0.0, ge=-40.0, le=24.0, description="Gain after conversion, dB.")
    engine_options: dict[str, Any] = Field(default_factory=dict, description="The engine's own options.")

    @field_validator("block_ms", mode="before")
    @classmethod
    def _block(cls, value: Any) -> Any:
        if value == AUTO_BLOCK:
            return value
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int | np.integer):
            raise ValueError(f"must be 'auto' or a whole number of ms, got {str(value)[:20]!r}")
        if not BLOCK_MS_MIN <= number <= BLOCK_MS_MAX or number % 10:
            raise ValueError(
                f"must be 'auto' or a multiple of 10 ms within {BLOCK_MS_MIN}..{BLOCK_MS_MAX}, got {number}"
            )
        return int(number)

    @field_validator("lookahead_ms")
    @classmethod
    def _whole_frames(cls, value: int) -> int:
        if value % 10:
            raise ValueError(f"must be a multiple of 10 ms (the frame period), got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LiveOptions:
        if self.pitch_shift is not None and self.auto_key:
            raise ValueError("give either pitch_shift or auto_key, not both")
        return self

    @property
    def block_is_auto(self) -> bool:
        """True when the block is to be chosen by measuring this machine (:func:`choose_block`)."""
        return self.block_ms == AUTO_BLOCK

    def with_block(self, block_ms: int) -> LiveOptions:
        """These options with a fixed block length (validated)."""
        return LiveOptions.model_validate({**self.model_dump(), "block_ms": block_ms})

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None = None, /, **fields: Any) -> LiveOptions:
        """Validated options from a mapping and/or keyword fields (``None`` values mean the default).

        Raises
        ------
        ParameterError
            ``unknown_engine``, ``invalid_preset``, ``invalid_f0_method`` (listing the valid names),
            ``invalid_pitch_shift``, ``invalid_engine_options``, ``invalid_parameter`` (naming the field).
        """
        from autovoice.pipeline.options import parse_options

        return parse_options(cls, data, fields)


def check_sample_rate(sr: int) -> int:
    """``sr`` if a live stream can run at it, else ``invalid_sample_rate`` listing the valid rates."""
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or int(sr) not in LIVE_SAMPLE_RATES:
        raise ParameterError(
            "invalid_sample_rate",
            f"A live stream runs at one of {', '.join(map(str, LIVE_SAMPLE_RATES))} Hz, got {sr}.",
            {"sample_rate": str(sr)[:20], "valid": list(LIVE_SAMPLE_RATES)},
        )
    return int(sr)


@dataclass(frozen=True)
class BlockTrial:
    """One candidate block as measured: conversion times of ``blocks`` blocks of synthetic voice."""

    block_ms: int
    latency_ms: float  # the stream's algorithmic latency at this block
    blocks: int
    p50_ms: float
    p99_ms: float
    max_share: float

    @property
    def share(self) -> float:
        """p99 as a share of the block."""
        return self.p99_ms / self.block_ms

    @property
    def ok(self) -> bool:
        return self.share <= self.max_share

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_ms": self.block_ms,
            "latency_ms": round(self.latency_ms, 3),
            "blocks": self.blocks,
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "share": round(self.share, 3),
            "ok": self.ok,
        }


@dataclass(frozen=True)
class BlockChoice:
    """The block ``block_ms="auto"`` chose, and why (the trials measured, in order)."""

    block_ms: int
    latency_ms: float
    trials: tuple[BlockTrial, ...]
    seconds: float  # wall time the measurements took (models were loaded before)
    max_share: float = AUTO_MAX_SHARE
    candidates: tuple[int, ...] = AUTO_BLOCKS_MS

    @property
    def chosen(self) -> BlockTrial:
        return next(t for t in self.trials if t.block_ms == self.block_ms)

    @property
    def reason(self) -> str:
        """One sentence: the chosen block's measured p99 and, if any, why shorter ones were not chosen."""
        c = self.chosen
        head = (
            f"{c.block_ms} ms blocks: p99 {c.p99_ms:.1f} ms per block "
            f"({100 * c.share:.0f} % of the block, at most {100 * self.max_share:.0f} % allowed)"
        )
        if c.block_ms == min(self.candidates):
            return f"{head}; the shortest block."
        slower = [t for t in self.trials if not t.ok and t.block_ms < c.block_ms]
        if not slower:
            return f"{head}."
        t = slower[-1]
        return (
            f"{head}; {t.block_ms} ms blocks needed p99 {t.p99_ms:.1f} ms ({100 * t.share:.0f} % of theirs)."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_ms": self.block_ms,
            "latency_ms": round(self.latency_ms, 3),
            "p99_ms": round(self.chosen.p99_ms, 2),
            "share": round(self.chosen.share, 3),
            "max_share": self.max_share,
            "reason": self.reason,
            "trials": [t.to_dict() for t in self.trials],
            "seconds": round(self.seconds, 3),
        }
