"""Song and speech conversion (options, orchestration, presets, pitch plan and remix) and enrollment (a voice
profile from recordings and/or a trained model)."""

from autovoice.engines.base import Preset
from autovoice.pipeline.convert import (
    ConversionResult,
    check_output,
    convert_audio,
    convert_file,
    convert_speech,
    default_output,
)
from autovoice.pipeline.enroll import build_profile, enroll, stage_model
from autovoice.pipeline.mix import MixResult, remix, true_peak_dbtp
from autovoice.pipeline.options import ConversionOptions
from autovoice.pipeline.pitch_plan import (
    Content,
    ContentDecision,
    PitchMode,
    PitchPlan,
    auto_shift,
    decide_content,
    plan_pitch,
)
from autovoice.pipeline.presets import PRESETS, PresetConfig, preset_config

__all__ = [
    "PRESETS",
    "Content",
    "ContentDecision",
    "ConversionOptions",
    "ConversionResult",
    "MixResult",
    "PitchMode",
    "PitchPlan",
    "Preset",
    "PresetConfig",
    "auto_shift",
    "build_profile",
    "check_output",
    "convert_audio",
    "convert_file",
    "convert_speech",
    "decide_content",
    "default_output",
    "enroll",
    "plan_pitch",
    "preset_config",
    "remix",
    "stage_model",
    "true_peak_dbtp",
]
