"""AutoVoice: self-hosted voice studio (voice profiles, singing voice conversion, TTS, measured quality)."""

__version__ = "0.1.0"
