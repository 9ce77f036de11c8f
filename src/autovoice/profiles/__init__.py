"""Voice profiles: build from recordings, store on disk (versioned, atomic), look up by name or id."""

from autovoice.profiles.build import build_profile, validate_profile_name
from autovoice.profiles.profile import FORMAT_VERSION, SampleQuality, VoiceProfile
from autovoice.profiles.store import ProfileStore

__all__ = [
    "FORMAT_VERSION",
    "ProfileStore",
    "SampleQuality",
    "VoiceProfile",
    "build_profile",
    "validate_profile_name",
]
