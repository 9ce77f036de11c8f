"""Bad-input table: every kind of unusable audio gets its stable error code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from autovoice.audio import load, validate_audio
from autovoice.config import Settings
from autovoice.errors import AudioError, AutoVoiceError, NotFoundError

SR = 16_000


def _tone(seconds: float, channels: int = 1, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.tile(y, (channels, 1)).T if channels > 1 else y


def _write(name: str, data: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        sf.write(str(d / name), data, sr, subtype=subtype)
        return d / name

    return make


def _raw(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(content)
        return d / name

    return make


def _nan_wav(d: Path) -> Path:
    y = _tone(2.0)
    y[100:200] = np.nan
    sf.write(str(d / "nan.wav"), y, SR, subtype="FLOAT")
    return d / "nan.wav"


def _cut(fmt: str, keep: float | int) -> Callable[[Path], Path]:
    """A 3 s tone saved as ``fmt``, cut to ``keep`` bytes (an int) or a fraction of its length (a float)."""

    def make(d: Path) -> Path:
        full = d / f"full.{fmt}"
        if fmt == "m4a":
            import av

            with av.open(str(full), "w") as container:
                stream = container.add_stream("aac", rate=SR, layout="mono")
                frame = av.AudioFrame.from_ndarray(
                    _tone(3.0).astype(np.float32)[None, :], format="fltp", layout="mono"
                )
                frame.sample_rate = SR
                for packet in [*stream.encode(frame), *stream.encode(None)]:
                    container.mux(packet)
        else:
            sf.write(str(full), _tone(3.0), SR)
        data = full.read_bytes()
        (d / f"cut.{fmt}").write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
        return d / f"cut.{fmt}"

    return make


_RANDOM = np.random.default_rng(7).bytes(20_000)


def _wav_claiming_channels(channels: int, frames: int = 4) -> bytes:
    """A 16-bit PCM WAV whose header says ``channels`` channels, with ``frames`` frames of silence."""
    import struct

    fmt = struct.pack("<HHIIHH", 1, channels, SR, SR * channels * 2, channels * 2, 16)
    data = bytes(frames * channels * 2)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


BAD_FILES = [
    ("damaged wav", _raw("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10), "audio_corrupt"),
    ("text as mp3", _raw("notes.mp3", b"these are not audio samples\n" * 100), "unsupported_format"),
    ("text as wav", _raw("notes.wav", b"these are not audio samples\n" * 100), "unsupported_format"),
    ("text as flac", _raw("notes.flac", b"these are not audio samples\n" * 100), "unsupported_format"),
    # FFmpeg "opens" random bytes named .flac as a stream of 0 channels: not `too_many_channels`.
    ("random bytes as flac", _raw("noise.flac", _RANDOM), "unsupported_format"),
    ("random bytes as wav", _raw("noise.wav", _RANDOM), "unsupported_format"),
    ("random bytes as mp3", _raw("noise.mp3", _RANDOM), "unsupported_format"),
    ("flac header only", _cut("flac", 60), "audio_corrupt"),
    ("flac cut mid-stream", _cut("flac", 0.3), "audio_corrupt"),
    ("ogg cut mid-stream", _cut("ogg", 0.3), "audio_corrupt"),
    ("ogg header only", _cut("ogg", 60), "audio_corrupt"),
    ("m4a without its index", _cut("m4a", 0.3), "audio_corrupt"),
    ("empty", _raw("empty.wav", b""), "audio_empty"),
    ("silence", _write("silence.wav", np.zeros(SR * 3)), "audio_silent"),
    ("short", _write("short.wav", _tone(0.5)), "audio_too_short"),
    ("8 channels", _write("surround.wav", _tone(2.0, channels=8)), "too_many_channels"),
    # More channels than libsndfile (1,024) or FFmpeg open: the header's count is the refusal, not 415.
    ("10,000 channels", _raw("many.wav", _wav_claiming_channels(10_000)), "too_many_channels"),
    ("NaN", _nan_wav, "audio_invalid_samples"),
    ("4 kHz", _write("low.wav", _tone(2.0, sr=4000), sr=4000), "unsupported_sample_rate"),
]


@pytest.mark.parametrize(("label", "make", "code"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_their_code(
    tmp_path: Path, label: str, make: Callable[[Path], Path], code: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(AutoVoiceError) as err:
        load(path)
    assert err.value.code == code, err.value.message
    assert err.value.caller_error
    assert str(path.name) in err.value.message or err.value.details
    # A plain message: no decoder errno text, no server path.
    assert "Errno" not in err.value.message
    assert str(tmp_path) not in err.value.message


def test_unreadable_files_say_what_is_wrong(tmp_path: Path) -> None:
    text = _raw("notes.flac", b"these are not audio samples\n" * 100)(tmp_path)
    with pytest.raises(AutoVoiceError, match="holds text, not audio"):
        load(text)
    cut = _cut("flac", 0.3)(tmp_path)
    with pytest.raises(AutoVoiceError) as err:
        load(cut)
    assert "FLAC audio but is damaged or incomplete" in err.value.message
    assert 0 < err.value.details["decoded_s"] < 3
    assert err.value.http_status == 415


def test_too_short_rounds_down() -> None:
    with pytest.raises(AudioError, match=r"lasts 0\.99 s"):
        validate_audio(_tone(0.999).astype(np.float32), sr=SR)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        load(tmp_path / "nope.wav")
    assert err.value.code == "file_not_found"


def test_too_long_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.write(str(tmp_path / "long.wav"), _tone(5.0), SR)
    settings = Settings(max_audio_seconds=4.0)
    monkeypatch.setattr("autovoice.audio.io.decode", lambda p: pytest.fail("decoded a too-long file"))
    with pytest.raises(AudioError) as err:
        load(tmp_path / "long.wav", settings=settings)
    assert err.value.code == "audio_too_long"
    assert err.value.details["max_s"] == 4.0


def test_file_too_large(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "big.wav"), _tone(2.0), SR)
    with pytest.raises(AudioError) as err:
        load(tmp_path / "big.wav", settings=Settings(max_file_bytes=1000))
    assert err.value.code == "file_too_large"
    assert err.value.http_status == 413


def test_clipping_is_a_warning_not_an_error() -> None:
    y = np.clip(_tone(2.0) * 10, -1, 1).astype(np.float32)
    check = validate_audio(y, sr=SR)
    assert check.clipped_fraction > 0.1
    assert any("clipped" in w for w in check.warnings)


def test_valid_audio_has_no_warnings() -> None:
    check = validate_audio(_tone(2.0).astype(np.float32), sr=SR)
    assert check.warnings == []
    assert check.duration_s == pytest.approx(2.0)
