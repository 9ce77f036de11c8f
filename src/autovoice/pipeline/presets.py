"""Conversion presets: what ``fast``, ``balanced`` and ``quality`` change.

| preset | F0 tracker | F0 smoothing | range cap (auto key) | engine |
| --- | --- | --- | --- | --- |
| `fast` | FCPE | off | on | the engine's `fast` options |
| `balanced` | FCPE | off | on | the engine's `balanced` options (default) |
| `quality` | FCPE | median, radius 2 frames (removes tracker jitter) | on | the engine's `quality` options |

A conversion's ``f0_method`` overrides the preset's tracker. The engine receives the preset name and
maps it to its own options (the world engine's are in :data:`autovoice.engines.world.options.PRESET_OPTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from autovoice.analysis import F0Method
from autovoice.engines.base import Preset
from autovoice.errors import unknown_choice

PRESETS: tuple[str, ...] = get_args(Preset)


@dataclass(frozen=True)
class PresetConfig:
    f0_method: F0Method
    f0_smooth_radius: int
    cap_to_range: bool


def preset_config(preset: str) -> PresetConfig:
    """The configuration of a preset; ``invalid_preset`` lists the valid names."""
    if preset not in PRESETS:
        raise unknown_choice("invalid_preset", "preset", preset, PRESETS)
    smooth = 2 if preset == "quality" else 0
    return PresetConfig(f0_method="fcpe", f0_smooth_radius=smooth, cap_to_range=True)
