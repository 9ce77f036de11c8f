"""Job tests reuse the service tests' session profile and clips (built once per session)."""

from tests.service.conftest import long_clip, profile_id, short_clip, voice_profile

__all__ = ["long_clip", "profile_id", "short_clip", "voice_profile"]
