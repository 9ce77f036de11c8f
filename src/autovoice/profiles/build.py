"""Build a voice profile from one or more recordings of one voice."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from autovoice.analysis import F0Track, estimate_f0, vocal_range
from autovoice.audio import frame_rms_db, load, resample, validate_audio
from autovoice.config import Settings, get_settings
from autovoice.errors import AudioError, ParameterError
from autovoice.profiles.profile import SampleQuality, VoiceProfile
from autovoice.progress import ProgressCallback, no_progress, sub_progress

#: A sample is a file path or an in-memory ``(mono float32 samples, sr)`` pair.
Sample = str | os.PathLike[str] | tuple[np.ndarray, int]
HOP_S = 0.01
MAX_PROFILE_SR = 48_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


def validate_profile_name(name: str) -> str:
    """Return the stripped name, or raise ``invalid_profile_name``."""
    stripped = name.strip()
    if not _NAME_RE.match(stripped):
        raise ParameterError(
            "invalid_profile_name",
            f"'{name}' is not a valid profile name: use 1-64 letters, digits, spaces, '_', '-' or '.', "
            "starting with a letter or digit.",
            {"name": name},
        )
    return stripped


def build_profile(
    samples: Sequence[Sample],
    *,
    name: str,
    settings: Settings | None = None,
    device: str = "cpu",
    engines: Sequence[str] | None = None,
    progress: ProgressCallback = no_progress,
) -> VoiceProfile:
    """Analyse recordings of one voice and return a :class:`VoiceProfile` (not yet stored).

    Parameters
    ----------
    samples
        One or more recordings (paths in any supported format, or ``(y, sr)`` mono pairs). All of a
        long sample is used. At least ``settings.profile_min_voiced_seconds`` (3 s) of voiced audio is
        required; under ``profile_recommended_voiced_seconds`` (30 s) the quality report warns.
    name
        The profile's unique name.
    device
        Torch device for the neural models (``"cpu"``, ``"cuda:0"``).
    engines
        Engines whose statistics to compute (default: all registered engines).
    progress
        ``progress(fraction, stage)`` callback.

    Raises
    ------
    AudioError
        Per sample (``audio_too_short``, ``audio_silent``, ``unsupported_format``...), or
        ``insufficient_voiced_audio`` for all samples together.
    """
    from autovoice.engines import ENGINES, load_engine
    from autovoice.metrics.similarity import speaker_embedding

    settings = settings or get_settings()
    name = validate_profile_name(name)
    if not samples:
        raise ParameterError("no_samples", "A profile needs at least one recording.")
    if len(samples) > 100:
        raise ParameterError("too_many_samples", f"At most 100 recordings per profile, got {len(samples)}.")

    progress(0.0, "load")
    loaded: list[tuple[np.ndarray, int, str]] = []
    warnings: list[str] = []
    clipped: list[float] = []
    for i, sample in enumerate(samples):
        if isinstance(sample, tuple):
            y, sr = np.asarray(sample[0], dtype=np.float32), int(sample[1])
            label = f"sample{i + 1}"
            if y.ndim == 2:
                y = y.mean(axis=0)
        else:
            y, sr = load(sample, mono=True, settings=settings)
            label = Path(sample).name
        check = validate_audio(y, sr=sr, settings=settings)
        clipped.append(check.clipped_fraction * len(y))
        warnings.extend(f"{label}: {w}" for w in check.warnings)
        loaded.append((y, sr, label))

    common_sr = min(max(sr for _, sr, _ in loaded), MAX_PROFILE_SR)
    hop = int(round(HOP_S * common_sr))
    parts: list[np.ndarray] = []
    for y, sr, _ in loaded:
        y = resample(y, orig_sr=sr, target_sr=common_sr)
        # Pad to whole frames so that per-sample F0 tracks line up when concatenated.
        parts.append(np.pad(y, (0, -len(y) % hop)))

    analyse = sub_progress(progress, 0.05, 0.6)
    tracks: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for i, y in enumerate(parts):
        analyse(i / len(parts), "analyse")
        track = estimate_f0(y, sr=common_sr, hop_s=HOP_S, device=device)
        tracks.append(track.f0[: len(y) // hop])
        levels.append(frame_rms_db(y, sr=common_sr, frame_s=HOP_S))
        try:
            embeddings.append(speaker_embedding(y, sr=common_sr, device=device))
        except AudioError:
            warnings.append(
                f"{loaded[i][2]}: no speech found for the speaker embedding; sample skipped there"
            )

    audio = np.concatenate(parts)
    f0 = F0Track(f0=np.concatenate(tracks).astype(np.float32), hop_s=HOP_S, method="fcpe")
    voiced_s = f0.voiced_seconds
    if voiced_s < settings.profile_min_voiced_seconds or not embeddings:
        raise AudioError(
            "insufficient_voiced_audio",
            f"The recordings hold {voiced_s:.1f} s of voiced sound; a profile needs at least "
            f"{settings.profile_min_voiced_seconds:.0f} s (30 s or more is recommended). "
            "Add longer or clearer recordings of the voice.",
            {"voiced_seconds": round(voiced_s, 2), "min_seconds": settings.profile_min_voiced_seconds},
        )
    if voiced_s < settings.profile_recommended_voiced_seconds:
        warnings.append(
            f"Only {voiced_s:.1f} s of voiced audio; {settings.profile_recommended_voiced_seconds:.0f} s "
            "or more gives a more faithful voice and range."
        )

    progress(0.6, "range")
    vrange = vocal_range(f0)
    quality = _quality(
        audio,
        sr=common_sr,
        f0=f0,
        levels=np.concatenate(levels),
        clipped_samples=sum(clipped),
        n_samples=len(loaded),
        warnings=warnings,
    )
    embedding = np.mean(embeddings, axis=0)
    embedding = (embedding / np.linalg.norm(embedding)).astype(np.float32)

    features: dict[str, np.ndarray] = {}
    names = list(ENGINES.names) if engines is None else list(engines)
    for j, engine_name in enumerate(names):
        progress(0.65 + 0.3 * j / max(len(names), 1), f"features:{engine_name}")
        engine = load_engine(engine_name, device=device, settings=settings)
        for key, value in engine.profile_features(audio, sr=common_sr, f0=f0).items():
            features[f"{engine_name}.{key}"] = np.asarray(value)
    progress(1.0, "done")
    return VoiceProfile(
        id=f"prof_{uuid.uuid4().hex[:12]}",
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        revision=1,
        embedding=embedding,
        vocal_range=vrange,
        quality=quality,
        sample_names=[label for _, _, label in loaded],
        features=features,
    )


def _quality(
    audio: np.ndarray,
    *,
    sr: int,
    f0: F0Track,
    levels: np.ndarray,
    clipped_samples: float,
    n_samples: int,
    warnings: list[str],
) -> SampleQuality:
    """Sample-quality report. SNR: median level of voiced frames over the 10th-percentile frame level."""
    n = min(len(levels), len(f0.f0))
    levels, voiced = levels[:n], f0.voiced[:n]
    floor = float(np.percentile(levels, 10))
    signal = float(np.median(levels[voiced])) if voiced.any() else floor
    snr = float(np.clip(signal - floor, 0.0, 80.0))
    silence_ratio = float(np.mean(levels < levels.max() - 40.0))
    clipped_fraction = clipped_samples / max(len(audio), 1)
    if snr < 15:
        warnings.append(f"Estimated SNR is {snr:.0f} dB: background noise will colour the voice.")
    if silence_ratio > 0.5:
        warnings.append(f"{silence_ratio * 100:.0f}% of the recording is silence.")
    return SampleQuality(
        duration_s=len(audio) / sr,
        voiced_s=f0.voiced_seconds,
        snr_db=snr,
        clipped_fraction=clipped_fraction,
        silence_ratio=silence_ratio,
        n_samples=n_samples,
        warnings=warnings,
    )
