"""Song and speech conversion: orchestration, presets, pitch plan and remix."""

from autovoice.engines.base import Preset
from autovoice.pipeline.convert import (
    ConversionResult,
    check_options,
    convert_audio,
    convert_file,
    convert_speech,
)
from autovoice.pipeline.mix import MixResult, remix, true_peak_dbtp
from autovoice.pipeline.pitch_plan import PitchMode, PitchPlan, auto_shift, plan_pitch
from autovoice.pipeline.presets import PRESETS, PresetConfig, preset_config

__all__ = [
    "PRESETS",
    "ConversionResult",
    "MixResult",
    "PitchMode",
    "PitchPlan",
    "Preset",
    "PresetConfig",
    "auto_shift",
    "check_options",
    "convert_audio",
    "convert_file",
    "convert_speech",
    "plan_pitch",
    "preset_config",
    "remix",
    "true_peak_dbtp",
]
