"""Voice profiles: what one voice is (measured recordings and/or trained models), stored on disk (versioned,
atomic), looked up by name or id. Building one from recordings is :mod:`autovoice.pipeline.enroll`."""

from autovoice.profiles.profile import (
    FORMAT_VERSION,
    ModelFiles,
    SampleQuality,
    TrainedModel,
    TrainedModelInfo,
    VoiceProfile,
    validate_profile_name,
)
from autovoice.profiles.store import ProfileStore

__all__ = [
    "FORMAT_VERSION",
    "ModelFiles",
    "ProfileStore",
    "SampleQuality",
    "TrainedModel",
    "TrainedModelInfo",
    "VoiceProfile",
    "validate_profile_name",
]
