"""Audio I/O, resampling, levels and validation."""

from autovoice.audio.io import (
    OUTPUT_FORMATS,
    SUPPORTED_INPUTS,
    AudioInfo,
    decode,
    load,
    probe,
    resample,
    save,
    to_mono,
)
from autovoice.audio.levels import frame_rms_db, loudness_lufs, peak_dbfs, rms_dbfs
from autovoice.audio.validate import AudioCheck, check_limits, check_samples, validate_audio

__all__ = [
    "OUTPUT_FORMATS",
    "SUPPORTED_INPUTS",
    "AudioCheck",
    "AudioInfo",
    "check_limits",
    "check_samples",
    "decode",
    "frame_rms_db",
    "load",
    "loudness_lufs",
    "peak_dbfs",
    "probe",
    "resample",
    "rms_dbfs",
    "save",
    "to_mono",
    "validate_audio",
]
