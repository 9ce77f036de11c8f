"""Enrollment: a voice profile from recordings of the voice and/or a trained model, checked and stored.

:func:`build_profile` analyses recordings (F0, range, speaker embedding, each engine's statistics);
:func:`stage_model` copies a trained model's files aside and inspects them; :func:`enroll` does both, in
that order (the fast check first), and stores the result: the one way the CLI and the service create a
profile.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from autovoice.analysis import F0Track, estimate_f0, vocal_range
from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.audio import frame_rms_db, load, resample, validate_audio
from autovoice.config import Settings, get_settings
from autovoice.engines import ENGINES, load_engine
from autovoice.engines.checkpoints import inspect_model
from autovoice.errors import AudioError, AutoVoiceError, NotFoundError, ParameterError, PayloadTooLargeError
from autovoice.metrics.identity import IdentityBand, band_clips, identity_band
from autovoice.profiles.profile import (
    SampleQuality,
    StoredFile,
    TrainedModel,
    VoiceProfile,
    model_only_profile,
    validate_profile_name,
)
from autovoice.profiles.trained import STORED_NAMES, StagedModel
from autovoice.progress import ProgressCallback, no_progress, sub_progress

#: A sample is a file path or an in-memory ``(mono float32 samples, sr)`` pair.
Sample = str | os.PathLike[str] | tuple[np.ndarray, int]
MAX_PROFILE_SR = 48_000
T = TypeVar("T")


def enroll(
    name: str,
    samples: Sequence[Sample] = (),
    *,
    model: Callable[[], StagedModel] | None = None,
    save: Callable[[VoiceProfile, Sequence[StagedModel]], T],
    settings: Settings | None = None,
    device: str = "cpu",
    progress: ProgressCallback = no_progress,
) -> T:
    """Create a profile from recordings and/or a trained model and store it; returns what ``save`` returns.

    The model is staged (copied and checked, :func:`stage_model`) first, because that is fast; then the
    recordings are analysed (:func:`build_profile`), or, without recordings, a model-only profile is
    made; then ``save(profile, staged models)`` stores both. The staging folder is removed whatever
    happens (a no-op once the store has taken it).

    Parameters
    ----------
    name
        The profile's unique name (checked: ``invalid_profile_name``).
    samples
        Recordings of the voice; may be empty when ``model`` is given.
    model
        Stages the trained model (e.g. ``lambda: stage_model(path, ...)``), or ``None``.
    save
        Stores the profile with the staged models (``ProfileStore.save``, the service's profile index).

    Raises
    ------
    ParameterError
        ``invalid_profile_name``; ``no_samples`` when neither recordings nor a model is given.
    AutoVoiceError
        What :func:`stage_model`, :func:`build_profile` and ``save`` raise.
    """
    name = validate_profile_name(name)
    if not samples and model is None:
        raise ParameterError(
            "no_samples", "A profile needs recordings of the voice, a trained model, or both."
        )
    staged = [model()] if model is not None else []
    try:
        if samples:
            profile = build_profile(samples, name=name, settings=settings, device=device, progress=progress)
        else:
            profile = model_only_profile(name)
        return save(profile, staged)
    finally:
        for st in staged:
            st.discard()


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
    hop = int(round(FRAME_HOP_S * common_sr))
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
        track = estimate_f0(y, sr=common_sr, hop_s=FRAME_HOP_S, device=device)
        tracks.append(track.f0[: len(y) // hop])
        levels.append(frame_rms_db(y, sr=common_sr, frame_s=FRAME_HOP_S))
        try:
            embeddings.append(speaker_embedding(y, sr=common_sr, device=device))
        except AudioError:
            warnings.append(
                f"{loaded[i][2]}: no speech found for the speaker embedding; sample skipped there"
            )

    audio = np.concatenate(parts)
    f0 = F0Track(f0=np.concatenate(tracks).astype(np.float32), hop_s=FRAME_HOP_S, method="fcpe")
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
    progress(0.62, "identity band")
    band = _identity_band(audio, sr=common_sr, device=device)

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
        identity_band=band,
    )


def _identity_band(audio: np.ndarray, *, sr: int, device: str) -> IdentityBand | None:
    """The voice's identity band (:mod:`autovoice.metrics.identity`) from clips of its enrollment audio;
    clips in which the encoder finds no voice are left out."""
    from autovoice.metrics.similarity import speaker_embedding

    clips = band_clips(len(audio), sr=sr)
    embeddings = []
    for a, b in clips:
        try:
            embeddings.append(speaker_embedding(audio[a:b], sr=sr, device=device))
        except AudioError:
            continue
    return identity_band(embeddings, clip_seconds=(clips[0][1] - clips[0][0]) / sr) if clips else None


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


def _sha256_copy(src: Path, dst: Path, *, limit: int, original: str) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` while hashing it; ``file_too_large`` past ``limit`` bytes."""
    from autovoice.models.weights import sha256_file

    try:
        digest = sha256_file(src, copy_to=dst, max_bytes=limit, what=original)
    except PayloadTooLargeError as exc:
        raise PayloadTooLargeError(
            exc.code, exc.message.rstrip(".") + " (AUTOVOICE_MAX_FILE_BYTES).", exc.details
        ) from None
    return digest, dst.stat().st_size


def _display(name: str) -> str:
    return "".join(c for c in os.path.basename(name) if c.isprintable())[:120]


def stage_model(
    model: str | os.PathLike[str],
    *,
    index: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    cluster: str | os.PathLike[str] | None = None,
    filenames: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> StagedModel:
    """Copy a trained model's files into a staging folder and check them; nothing is stored yet.

    Parameters
    ----------
    model
        The checkpoint: an RVC / Applio ``.pth`` or a so-vits-svc ``G_*.pth``.
    index, config, cluster
        Optional companions: RVC's FAISS ``.index``, so-vits-svc's ``config.json`` (required for it),
        a so-vits-svc cluster / feature-retrieval model.
    filenames
        The names the user knows the files by, per role (uploads arrive under server-chosen names).
    settings
        Where the profiles live (the staging folder is on the same file system) and the size limit
        (``max_file_bytes`` per file).

    Raises
    ------
    NotFoundError
        ``file_not_found``.
    PayloadTooLargeError
        ``file_too_large``.
    AutoVoiceError
        What :func:`~autovoice.engines.checkpoints.inspect_model` raises: ``untrusted_checkpoint``,
        ``invalid_checkpoint``, ``model_config_mismatch``, ``model_config_required``, ...
    """
    settings = settings or get_settings()
    given = {"model": model, "index": index, "config": config, "cluster": cluster}
    sources = {role: Path(p) for role, p in given.items() if p is not None}
    names = {role: _display((filenames or {}).get(role) or src.name) for role, src in sources.items()}
    for role, src in sources.items():
        if not src.is_file():
            raise NotFoundError(
                "file_not_found", f"No such file: '{names[role]}' (the model's {role}).", {"role": role}
            )
    root = settings.profiles_dir
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f".stage-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        files: dict[str, StoredFile] = {}
        for role, src in sources.items():
            suffix = Path(names[role]).suffix.lower()
            keep = role == "cluster" and re.fullmatch(r"\.[a-z0-9]{1,8}", suffix)
            stored = STORED_NAMES[role] + (suffix if keep else "")
            digest, size = _sha256_copy(
                src, folder / stored, limit=settings.max_file_bytes, original=names[role]
            )
            files[role] = StoredFile(stored, names[role], digest, size)
        try:
            info = inspect_model(
                folder / files["model"].name,
                index=folder / files["index"].name if "index" in files else None,
                config=folder / files["config"].name if "config" in files else None,
                cluster=folder / files["cluster"].name if "cluster" in files else None,
            )
        except AutoVoiceError as exc:
            raise _in_user_terms(exc, folder, files) from None
        trained = TrainedModel(
            id=f"mdl_{uuid.uuid4().hex[:12]}",
            name=Path(names["model"]).stem[:64] or "model",
            info=info,
            stored=files,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            folder=folder,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedModel(folder, trained)


def _in_user_terms(exc: AutoVoiceError, folder: Path, files: Mapping[str, StoredFile]) -> AutoVoiceError:
    """The same error, naming the user's files instead of the staged copies (no server paths)."""

    def fix(text: str) -> str:
        for f in files.values():
            text = text.replace(str(folder / f.name), f.original).replace(f.name, f.original)
        return text.replace(str(folder), "")

    details = {k: fix(v) if isinstance(v, str) else v for k, v in exc.details.items()}
    return type(exc)(exc.code, fix(exc.message), details)
