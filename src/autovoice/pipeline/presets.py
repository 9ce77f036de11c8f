"""Conversion presets: what ``fast``, ``balanced`` and ``quality`` change.

| preset | F0 tracker | F0 smoothing | range cap (auto key) | engine (world) |
| --- | --- | --- | --- | --- |
| `fast` | FCPE | off | on | the engine's `fast` options |
| `balanced` | FCPE | off | on | the engine's `balanced` options (default) |
| `quality` | FCPE | median, radius 2 frames (removes tracker jitter) | on | the engine's `quality` options |

The engine's own per-preset options are listed in :data:`autovoice.engines.world.PRESET_OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

from autovoice.analysis import F0Method
from autovoice.engines.base import Preset
from autovoice.errors import ParameterError

PRESETS: tuple[str, ...] = get_args(Preset)


@dataclass(frozen=True)
class PresetConfig:
    f0_method: F0Method
    f0_smooth_radius: int
    cap_to_range: bool
    engine: str = "world"
    engine_options: dict[str, Any] = field(default_factory=dict)


def preset_config(preset: str) -> PresetConfig:
    """The configuration of a preset; ``invalid_preset`` lists the valid names."""
    if preset not in PRESETS:
        raise ParameterError(
            "invalid_preset",
            f"Unknown preset '{preset}'. Valid presets: {', '.join(PRESETS)}.",
            {"preset": preset, "valid": list(PRESETS)},
        )
    smooth = 2 if preset == "quality" else 0
    return PresetConfig(
        f0_method="fcpe", f0_smooth_radius=smooth, cap_to_range=True, engine_options={"preset": preset}
    )
