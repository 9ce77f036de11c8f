"""What a live stream may choose (:class:`LiveOptions`) and the rates it may run at."""

from __future__ import annotations

from collections.abc import Mapping
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
    block_ms: int = Field(default=40, ge=20, le=500, description="Block length, ms (a multiple of 10).")
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

    @field_validator("block_ms", "lookahead_ms")
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
