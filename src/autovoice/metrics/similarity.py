"""Speaker similarity: cosine similarity of resemblyzer (GE2E) speaker embeddings.

An embedding is a 256-d unit vector that describes *who* is speaking, not what is said. Resemblyzer's own
preprocessing is applied (raise quiet audio to -30 dBFS RMS, cut silences longer than ~0.2 s found by
WebRTC VAD), after resampling to 16 kHz with our soxr resampler. Typical cosine similarities of two
utterances: 0.75..0.95 for the same speaker, 0.4..0.65 for different speakers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autovoice.audio import check_samples, resample, to_mono
from autovoice.errors import AudioError, ParameterError

#: Sample rate of the speaker encoder in Hz.
EMBEDDING_SR = 16_000
#: Size of a speaker embedding.
EMBEDDING_DIM = 256
#: Resemblyzer's loudness target for quiet input, dBFS RMS (it only ever raises the level).
_NORM_TARGET_DBFS = -30.0


def speaker_embedding(y: np.ndarray, *, sr: int, device: str = "cpu") -> np.ndarray:
    """The speaker embedding of a voice recording.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio in -1..1 (channels are averaged).
    sr
        Sample rate of ``y`` in Hz.
    device
        Torch device for the encoder (``"cpu"``, ``"cuda:0"``).

    Returns
    -------
    np.ndarray
        ``(256,)`` float32, L2 norm 1, all components >= 0.

    Raises
    ------
    AudioError
        ``audio_empty`` / ``audio_invalid_samples`` for empty or non-finite audio; ``no_voiced_audio``
        when the voice activity detector finds no speech (silence, noise, a pure tone).
    """
    return embedding_16k(to_16k(y, sr=sr), device=device)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two embeddings, in -1..1 (0..1 for resemblyzer embeddings).

    Raises
    ------
    ParameterError
        ``invalid_parameter`` when the vectors are not 1-D of the same length, hold NaN/inf, or one is
        all zeros.
    """
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if va.ndim != 1 or va.shape != vb.shape or va.size == 0:
        raise ParameterError(
            "invalid_parameter",
            f"Embeddings must be 1-D vectors of the same length, got shapes {va.shape} and {vb.shape}.",
            {"shape_a": list(va.shape), "shape_b": list(vb.shape)},
        )
    if not (np.isfinite(va).all() and np.isfinite(vb).all()):
        raise ParameterError("invalid_parameter", "Embeddings must not contain NaN or infinite values.")
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    if na == 0.0 or nb == 0.0:
        raise ParameterError("invalid_parameter", "An all-zero embedding has no direction to compare.")
    return float(np.clip(np.dot(va, vb) / (na * nb), -1.0, 1.0))


def speaker_similarity(
    y: np.ndarray, *, sr: int, reference_embedding: np.ndarray, device: str = "cpu"
) -> float:
    """Cosine similarity (-1..1, in practice 0..1) between the voice in ``y`` and a reference embedding.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio at ``sr`` Hz.
    sr
        Sample rate in Hz.
    reference_embedding
        ``(256,)`` embedding from :func:`speaker_embedding` (for example a voice profile's).
    device
        Torch device for the encoder.
    """
    ref = np.asarray(reference_embedding)
    if ref.shape != (EMBEDDING_DIM,):
        raise ParameterError(
            "invalid_parameter",
            f"reference_embedding must have shape ({EMBEDDING_DIM},), got {ref.shape}; "
            "compute it with speaker_embedding().",
            {"shape": list(ref.shape)},
        )
    return cosine_similarity(speaker_embedding(y, sr=sr, device=device), ref)


def to_16k(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Validated mono float32 audio resampled to 16 kHz and clipped to -1..1 (what a file would hold)."""
    if sr <= 0:
        raise ParameterError("invalid_parameter", f"sr must be a positive sample rate in Hz, got {sr}.")
    arr = check_samples(np.asarray(y, dtype=np.float32))
    x = resample(to_mono(arr), orig_sr=sr, target_sr=EMBEDDING_SR)
    return np.asarray(np.clip(x, -1.0, 1.0), dtype=np.float32)


def embedding_16k(x: np.ndarray, *, device: str) -> np.ndarray:
    """Embedding of validated mono 16 kHz audio (see :func:`speaker_embedding`)."""
    return voiced_embedding_16k(x, device=device)[0]


def voiced_embedding_16k(
    x: np.ndarray, *, device: str, max_seconds: float | None = None
) -> tuple[np.ndarray, float]:
    """Embedding of validated mono 16 kHz audio and the seconds of voiced audio it was computed on.

    Silences longer than ~0.2 s are cut first (resemblyzer's VAD step); ``max_seconds`` then keeps only
    the first ``max_seconds`` of what remains, which bounds the encoder's work on long audio.

    Returns
    -------
    tuple
        ``(embedding, seconds)``: the ``(256,)`` unit embedding and the voiced audio used, seconds.

    Raises
    ------
    AudioError
        ``no_voiced_audio`` (see :func:`speaker_embedding`).
    """
    from resemblyzer.audio import trim_long_silences

    from autovoice.models.cache import load_voice_encoder

    no_voice = AudioError(
        "no_voiced_audio",
        "No speech or singing was found in the audio (it is silent, noise, or too short for the voice "
        "activity detector's 30 ms frames), so it has no speaker embedding.",
        {"seconds": round(len(x) / EMBEDDING_SR, 3)},
    )
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms <= 1e-9:
        raise no_voice
    # resemblyzer.preprocess_wav's volume step (increase only), with a clip so that a raised peak does not
    # wrap around in the VAD's int16 conversion.
    gain = max(1.0, 10 ** (_NORM_TARGET_DBFS / 20) / rms)
    wav = np.clip(x * gain, -1.0, 1.0).astype(np.float32)
    wav = np.asarray(trim_long_silences(wav), dtype=np.float32)
    if max_seconds is not None:
        wav = wav[: int(max_seconds * EMBEDDING_SR)]
    if wav.size == 0:
        raise no_voice
    embed = embed_utterance(load_voice_encoder(device), wav)
    norm = float(np.linalg.norm(embed))
    if not np.isfinite(embed).all() or norm == 0.0:
        raise no_voice
    return np.asarray(embed / norm, dtype=np.float32), len(wav) / EMBEDDING_SR


def embed_utterance(encoder: Any, wav: np.ndarray) -> np.ndarray:
    """``VoiceEncoder.embed_utterance`` (partials at 1.3 per second, 75 % coverage) with our own mel.

    Resemblyzer computes its mel spectrogram with ``librosa.feature.melspectrogram``, whose first call
    costs every cold run about 1.6 s of lazy imports; :func:`autovoice.audio.spectral.mel_power` is the
    same computation (``tests/metrics/test_similarity.py`` checks both agree).
    """
    import torch

    wav_slices, mel_slices = encoder.compute_partial_slices(len(wav), 1.3, 0.75)
    if wav_slices[-1].stop >= len(wav):
        wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
    mel = mel_frames(wav)
    mels = np.array([mel[s] for s in mel_slices])
    with torch.no_grad():
        partial = encoder(torch.from_numpy(mels).to(encoder.device)).cpu().numpy()
    raw = np.mean(partial, axis=0)
    return np.asarray(raw / np.linalg.norm(raw), dtype=np.float32)


def mel_frames(wav: np.ndarray) -> np.ndarray:
    """Resemblyzer's encoder input: ``(frames, 40)`` float32 mel power frames of 16 kHz ``wav``."""
    from autovoice.audio.spectral import mel_power

    return np.asarray(mel_power(wav, sr=EMBEDDING_SR, n_fft=400, hop_length=160, n_mels=40), dtype=np.float32)
