"""What is being said, frame by frame: Whisper's front end and its encoder's content features.

:func:`log_mel` is Whisper's input (the words check transcribes with it). :func:`content_features` runs
Whisper base's encoder (the CTranslate2 model of :func:`autovoice.models.cache.load_whisper`) on the
audio in windows of at most :data:`CONTENT_WINDOW_S` seconds, **without** padding them to Whisper's 30 s
(the positional table is cut to the window, as whisper-vits-svc does), and removes what the output owes
to position alone: the mean output per position index over many speakers' utterances
(:data:`POSITION_MEAN_FILE`). What is left says which sound is being made, much more than who makes
it: frames of two speakers saying the same phone end up close, which is what an engine needs to find a
target voice's frame for a source frame. Each frame is L2-normalised, 20 ms apart.

The position mean ships with AutoVoice (``analysis/data/whisper_base_position_mean.npy``, float16,
``(POSITIONS, 512)``); it was computed by ``scripts/whisper_position_mean.py`` from the 10 LibriSpeech
speakers of the shared recordings (utterances 0-8; LibriSpeech is CC BY 4.0, V. Panayotov et al.).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from autovoice.errors import ParameterError

#: Sample rate Whisper listens at, Hz.
SR = 16_000
#: Whisper's STFT: window and hop in samples (10 ms hop; the encoder halves the frame rate to 20 ms).
N_FFT, HOP = 400, 160
N_MELS = 80
#: Frames of Whisper's full 30 s input.
FULL_FRAMES = 3000
#: Encoder frames per second.
CONTENT_RATE = 50
#: Longest window the content encoder reads at once, seconds (the position mean covers it).
CONTENT_WINDOW_S = 20.0
#: Context added on each side of a window of a longer input and dropped after encoding, seconds.
CONTENT_CONTEXT_S = 1.0
#: Positions (20 ms encoder frames) the position mean covers.
POSITIONS = int(CONTENT_WINDOW_S * CONTENT_RATE + 2 * CONTENT_CONTEXT_S * CONTENT_RATE)
POSITION_MEAN_FILE = Path(__file__).parent / "data" / "whisper_base_position_mean.npy"


def log_mel(x: np.ndarray, *, frames: int = FULL_FRAMES) -> np.ndarray:
    """Whisper's input features of 16 kHz audio: ``(80, frames)`` float32 (30 s by default).

    Zero-padded or cut to ``frames`` hops; periodic Hann window of 400 samples, hop 160, reflect padding
    at the edges (as ``torch.stft(center=True)``); power spectrum through an 80-band Slaney mel filterbank
    (0..8 kHz); ``log10``, floored 8 decades below the maximum, then scaled as ``(log + 4) / 4``.
    """
    n_samples = frames * HOP
    padded = np.zeros(n_samples, dtype=np.float64)
    n = min(x.size, n_samples)
    padded[:n] = x[:n]
    framed = np.lib.stride_tricks.sliding_window_view(np.pad(padded, N_FFT // 2, mode="reflect"), N_FFT)
    spectrum = np.fft.rfft(framed[::HOP][:frames] * _hann(), axis=-1)
    mel = mel_filters() @ (np.abs(spectrum) ** 2).T
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return np.asarray((logs + 4.0) / 4.0, dtype=np.float32)


def encode_window(x: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Whisper base encoder output of one window of 16 kHz audio (at most :data:`POSITIONS` encoder
    frames), before any position correction: ``(ceil(seconds * 50), 512)`` float32."""
    import ctranslate2

    from autovoice.models.cache import load_whisper

    frames = max(int(np.ceil(x.size / SR * CONTENT_RATE)), 1)
    if frames > POSITIONS:
        raise ParameterError(
            "invalid_parameter",
            f"A content window holds at most {POSITIONS / CONTENT_RATE:g} s of audio, got "
            f"{x.size / SR:.1f} s; use content_features for longer audio.",
        )
    mel = log_mel(x, frames=2 * frames)[None]  # the encoder halves the mel frames
    enc = load_whisper(device).encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True
    )
    out: np.ndarray = np.asarray(enc, dtype=np.float32)[0]
    return out


def content_features(x: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Position-free Whisper content features of 16 kHz audio: ``(ceil(seconds * 50), 512)`` float32,
    one L2-normalised row per 20 ms (see the module docstring)."""
    mean = position_mean()
    total = max(int(np.ceil(x.size / SR * CONTENT_RATE)), 1)
    win, ctx = int(CONTENT_WINDOW_S * CONTENT_RATE), int(CONTENT_CONTEXT_S * CONTENT_RATE)
    per = SR // CONTENT_RATE  # samples per encoder frame
    rows = []
    for start in range(0, total, win):
        a, b = max(start - ctx, 0), min(start + win + ctx, total)
        e = encode_window(x[a * per : b * per], device=device)[: b - a]
        e = e - mean[: len(e)]
        rows.append(e[start - a : min(start + win, total) - a])
    feats = np.concatenate(rows)
    return np.asarray(
        feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-6), dtype=np.float32
    )


@lru_cache(maxsize=1)
def position_mean() -> np.ndarray:
    """The encoder's mean output per position, ``(POSITIONS, 512)`` float32 (see the module docstring)."""
    return np.asarray(np.load(POSITION_MEAN_FILE), dtype=np.float32)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.asarray(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """``(80, 201)`` Slaney mel filterbank, as ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)``."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        lin = f / (200.0 / 3)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27), lin)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27) * (m - 15.0)), m * (200.0 / 3))

    fft_hz = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(SR / 2)), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return np.asarray(weights * (2.0 / (edges[2:] - edges[:-2]))[:, None])
