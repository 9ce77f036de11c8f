"""Storage tests reuse the service tests' session profile (built once per session)."""

from tests.service.conftest import voice_profile

__all__ = ["voice_profile"]
