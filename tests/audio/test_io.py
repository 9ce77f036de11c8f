from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from autovoice.audio import decode, load, probe, resample, save, to_mono
from autovoice.errors import ParameterError

SR = 44_100


def _stereo(seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_save_then_load_keeps_rate_channels_and_length(tmp_path: Path, fmt: str) -> None:
    y = _stereo()
    path = save(tmp_path / f"x.{fmt}", y, sr=SR)
    out, sr = load(path)
    assert sr == SR
    assert out.shape[0] == 2
    assert out.dtype == np.float32
    # Lossy codecs may pad by up to a frame or two.
    assert abs(out.shape[1] - y.shape[1]) <= 2048
    if fmt in ("wav", "flac"):
        np.testing.assert_allclose(out, y, atol=1e-4)
    assert not list(tmp_path.glob("*.part"))


def _encode_with_ffmpeg(path: Path, codec: str, y: np.ndarray, sr: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y), format="fltp", layout="stereo")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize(("suffix", "codec", "sr"), [(".m4a", "aac", SR), (".opus", "libopus", 48_000)])
def test_decodes_ffmpeg_only_formats(tmp_path: Path, suffix: str, codec: str, sr: int) -> None:
    t = np.arange(int(sr * 1.5)) / sr
    y = np.stack([0.4 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    path = tmp_path / f"clip{suffix}"
    _encode_with_ffmpeg(path, codec, y, sr)
    info = probe(path)
    assert info.channels == 2
    out, out_sr = decode(path)
    assert out_sr == sr
    assert out.shape[0] == 2
    assert abs(out.shape[1] / sr - 1.5) < 0.1
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert abs(np.argmax(spectrum) * sr / len(out[0]) - 440) < 3


def test_resample_keeps_frequency_and_duration() -> None:
    t = np.arange(SR) / SR
    y = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = resample(y, orig_sr=SR, target_sr=16_000)
    assert out.shape == (16_000,)
    assert abs(np.argmax(np.abs(np.fft.rfft(out))) - 1000) <= 1
    stereo = resample(_stereo(1.0), orig_sr=SR, target_sr=22_050)
    assert stereo.shape == (2, 22_050)


def test_load_mono_and_resampled(tmp_path: Path) -> None:
    path = save(tmp_path / "x.wav", _stereo(), sr=SR)
    y, sr = load(path, sr=16_000, mono=True)
    assert sr == 16_000
    assert y.ndim == 1
    assert abs(len(y) - int(1.5 * 16_000)) <= 1
    np.testing.assert_allclose(to_mono(_stereo()), _stereo().mean(axis=0), atol=1e-7)


def test_save_rejects_unknown_format_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        save(tmp_path / "x.xyz", _stereo(), sr=SR)
    assert err.value.code == "unsupported_output_format"
    assert list(tmp_path.iterdir()) == []


def test_save_failure_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - libsndfile rejects the rate; what matters is the debris
        save(tmp_path / "x.mp3", _stereo(), sr=1_000)
    assert list(tmp_path.iterdir()) == []


def test_wav_is_24_bit(tmp_path: Path) -> None:
    save(tmp_path / "x.wav", _stereo(), sr=SR)
    assert sf.info(str(tmp_path / "x.wav")).subtype == "PCM_24"
