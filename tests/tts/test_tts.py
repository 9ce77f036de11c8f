"""Text to speech with the bundled Piper voice: audio, streaming, voices, errors."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autovoice import tts
from autovoice.audio import rms_dbfs
from autovoice.config import Settings
from autovoice.errors import AutoVoiceError, ModelUnavailableError, NotFoundError, ParameterError
from autovoice.tts.piper_voice import (
    PiperTtsVoice,
    builtin_voice_files,
    download_voice,
    find_voice_files,
    voices_dir,
)
from tests.support import MALE, speaker_files

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
THREE = "This is the first sentence. Here comes a second one, a little longer. And a third!"


@pytest.fixture(scope="module")
def joe() -> tts.TtsVoice:
    """The built-in voice, loaded once (seconds) and kept in the model cache."""
    return tts.load_voice()


def _words_per_second(text: str, y: np.ndarray, sr: int) -> float:
    return len(text.split()) / (len(y) / sr)


def test_builtin_voice(joe: tts.TtsVoice) -> None:
    assert isinstance(joe, tts.TtsVoice)
    assert joe.name == "joe"
    assert joe.sample_rate == 22_050
    assert tts.load_voice("joe") is joe  # loaded once
    assert tts.load_voice(None) is joe


def test_synthesize_speech(joe: tts.TtsVoice) -> None:
    y, sr = tts.synthesize(SENTENCE)
    assert sr == joe.sample_rate == 22_050
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert rms_dbfs(y) > -35.0  # speech, not silence
    assert 2.0 <= _words_per_second(SENTENCE, y, sr) <= 8.0
    assert np.max(np.abs(y)) <= 10 ** (tts.PEAK_DBFS / 20) + 1e-6  # headroom, never clipped


def test_speed_changes_duration(joe: tts.TtsVoice) -> None:
    slow, sr = tts.synthesize(SENTENCE, speed=0.5)
    fast, _ = tts.synthesize(SENTENCE, speed=2.0)
    assert len(fast) < 0.5 * len(slow)  # nominally 1/4
    assert 1.0 <= _words_per_second(SENTENCE, slow, sr) <= 5.0


def test_stream_yields_one_chunk_per_sentence(joe: tts.TtsVoice) -> None:
    chunks = list(tts.stream(THREE))
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
        assert rms_dbfs(chunk) > -35.0


@pytest.mark.slow
def test_stream_concatenation_equals_one_shot() -> None:
    """Same voice state -> the streamed chunks, joined, are the one-shot audio, sample for sample.

    Piper draws noise inside the ONNX graph from a per-session generator that advances on every run, so
    the comparison needs two sessions created with the same seed (fresh loads, not the cached voice).
    """
    import onnxruntime

    files = builtin_voice_files()
    try:
        onnxruntime.set_seed(1234)
        voice_a = PiperTtsVoice.load(files)
        onnxruntime.set_seed(1234)
        voice_b = PiperTtsVoice.load(files)
    finally:
        onnxruntime.set_seed(time.time_ns() % 2**31)  # later sessions random again
    y, sr = tts.synthesize(THREE, voice=voice_a)
    chunks = list(tts.stream(THREE, voice=voice_b))
    assert sr == voice_b.sample_rate
    assert len(chunks) == 3
    np.testing.assert_array_equal(np.concatenate(chunks), y)


def test_progress_reaches_one(joe: tts.TtsVoice) -> None:
    seen: list[tuple[float, str]] = []
    tts.synthesize(THREE, progress=lambda f, stage: seen.append((f, stage)))
    fractions = [f for f, _ in seen]
    assert {stage for _, stage in seen} == {"tts"}
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)


def test_voice_by_path_and_by_cached_name(joe: tts.TtsVoice, settings: Settings, tmp_path: Path) -> None:
    builtin = builtin_voice_files()
    # The bundled model named by its path loads (the same session, from the cache).
    assert tts.load_voice(str(builtin.model)).sample_rate == 22_050
    # A voice in the cache folder is found by name; its config sits next to it.
    folder = voices_dir(settings)
    folder.mkdir(parents=True)
    for src in (builtin.model, builtin.config):
        (folder / src.name.replace("joe", "copy")).symlink_to(src)
    files = find_voice_files("en_US-copy-medium", settings=settings)
    assert files.model == folder / "en_US-copy-medium.onnx"
    assert files.config == folder / "en_US-copy-medium.onnx.json"
    # ... and by path, the .onnx.json path naming the same voice.
    by_path = find_voice_files(str(folder / "en_US-copy-medium.onnx.json"), settings=settings)
    assert by_path.model == files.model
    assert by_path.name == "en_US-copy-medium"


def test_list_voices(settings: Settings) -> None:
    voices = tts.list_voices(settings)
    joe = voices[0]
    assert joe["name"] == "joe"
    assert joe["builtin"] is True
    assert joe["language"] == "en_US"
    assert joe["sample_rate"] == 22_050
    assert joe["license"] == "CC0"
    json.dumps(voices)  # serialisable as it is

    folder = voices_dir(settings)
    folder.mkdir(parents=True)
    builtin = builtin_voice_files()
    (folder / "de_DE-test-low.onnx").write_bytes(b"model")
    config = json.loads(builtin.config.read_text())
    config["language"] = {"code": "de_DE", "name_english": "German"}
    config["audio"] = {"sample_rate": 16_000, "quality": "low"}
    (folder / "de_DE-test-low.onnx.json").write_text(json.dumps(config))
    (folder / "de_DE-test-low.MODEL_CARD").write_text("# Model card\n\n* License: MIT\n")
    (folder / "xx_XX-broken-low.onnx").write_bytes(b"model")
    (folder / "xx_XX-broken-low.onnx.json").write_text("{not json")
    (folder / "xx_XX-noconfig-low.onnx").write_bytes(b"model")
    names = [v["name"] for v in tts.list_voices(settings)]
    assert names == ["joe", "de_DE-test-low"]
    test = tts.list_voices(settings)[1]
    assert test["language"] == "de_DE"
    assert test["sample_rate"] == 16_000
    assert test["license"] == "MIT"
    assert test["builtin"] is False
    assert test["quality"] == "low"


def test_unpronounceable_text(joe: tts.TtsVoice) -> None:
    with pytest.raises(ParameterError) as err:
        tts.synthesize("...")
    assert err.value.code == "empty_text"


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "code"),
    [
        ("", {}, ParameterError, "empty_text"),
        ("  \n\t ", {}, ParameterError, "empty_text"),
        ("a" * 5001, {}, ParameterError, "text_too_long"),
        ("Hi.", {"speed": 0.49}, ParameterError, "invalid_parameter"),
        ("Hi.", {"speed": 2.01}, ParameterError, "invalid_parameter"),
        ("Hi.", {"speed": float("nan")}, ParameterError, "invalid_parameter"),
        ("Hi.", {"speed": 0}, ParameterError, "invalid_parameter"),
        ("Hi.", {"speed": True}, ParameterError, "invalid_parameter"),
        ("Hi.", {"speed": "fast"}, ParameterError, "invalid_parameter"),
        ("Hi.", {"voice": "/no/such/voice.onnx"}, NotFoundError, "voice_not_found"),
        ("Hi.", {"voice": "no_such_voice"}, NotFoundError, "voice_not_found"),
        ("Hi.", {"voice": "en_US-lessac-medium"}, ModelUnavailableError, "voice_unavailable"),
        ("Hi.", {"voice": "bad name!"}, ParameterError, "invalid_parameter"),
        ("Hi.", {"voice": "/tmp/not-a-model.wav"}, ParameterError, "invalid_parameter"),
    ],
)
@pytest.mark.parametrize("entry", ["synthesize", "stream"])
def test_bad_input(
    text: str, kwargs: dict[str, Any], error: type[AutoVoiceError], code: str, entry: str
) -> None:
    # stream() validates when called, before the first chunk is asked for.
    with pytest.raises(error) as err:
        getattr(tts, entry)(text, **kwargs)
    assert err.value.code == code


def test_missing_voice_message_says_how_to_get_it(settings: Settings) -> None:
    with pytest.raises(ModelUnavailableError) as err:
        tts.load_voice("en_US-lessac-medium", settings=settings)
    message = err.value.message
    assert str(voices_dir(settings)) in message
    assert "AUTOVOICE_ALLOW_DOWNLOADS=1" in message
    assert "en/en_US/lessac/medium/" in err.value.details["url"]


def test_model_without_config_or_unreadable(tmp_path: Path) -> None:
    model = tmp_path / "xx_XX-bad-low.onnx"
    model.write_bytes(b"not an onnx model")
    with pytest.raises(ModelUnavailableError) as err:
        tts.load_voice(str(model))
    assert err.value.code == "voice_unavailable"
    assert "xx_XX-bad-low.onnx.json" in err.value.message
    model.with_name(model.name + ".json").write_text(builtin_voice_files().config.read_text())
    with pytest.raises(ModelUnavailableError) as err:
        tts.load_voice(str(model))
    assert err.value.code == "voice_unavailable"


# --- downloads, against a local stand-in for the Piper voices repository ---------------------------


@pytest.fixture
def voice_repo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server laid out like the Piper voices repository, with one tiny fake voice."""
    root = tmp_path / "repo"
    folder = root / "en" / "en_US" / "tiny" / "low"
    folder.mkdir(parents=True)
    payloads = {
        "en_US-tiny-low.onnx": b"fake model bytes",
        "en_US-tiny-low.onnx.json": b'{"audio": {"sample_rate": 16000}}',
        "MODEL_CARD": b"* License: CC-BY 4.0\n",
    }
    files = {}
    for name, data in payloads.items():
        (folder / name).write_bytes(data)
        files[f"en/en_US/tiny/low/{name}"] = {
            "size_bytes": len(data),
            "md5_digest": hashlib.md5(data).hexdigest(),
        }
    (root / "voices.json").write_text(json.dumps({"en_US-tiny-low": {"files": files}}))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_voice(voice_repo: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = voice_repo
    dest = tmp_path / "voices"
    model = download_voice("en_US-tiny-low", dest, base_url=url)
    assert model == dest / "en_US-tiny-low.onnx"
    assert model.read_bytes() == b"fake model bytes"
    assert (dest / "en_US-tiny-low.onnx.json").is_file()
    assert (dest / "en_US-tiny-low.MODEL_CARD").read_text().startswith("* License")
    assert sorted(p.name for p in dest.iterdir()) == [
        "en_US-tiny-low.MODEL_CARD",
        "en_US-tiny-low.onnx",
        "en_US-tiny-low.onnx.json",
    ]


def test_download_rejects_corrupt_file_and_unknown_voice(
    voice_repo: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = voice_repo
    dest = tmp_path / "voices"
    (root / "en/en_US/tiny/low/en_US-tiny-low.onnx").write_bytes(b"tampered model!!")  # same size
    with pytest.raises(ModelUnavailableError) as err:
        download_voice("en_US-tiny-low", dest, base_url=url)
    assert err.value.code == "download_failed"
    assert not (dest / "en_US-tiny-low.onnx").exists()
    assert not [p for p in dest.iterdir() if p.suffix == ".part"]
    with pytest.raises(NotFoundError) as nf:
        download_voice("en_US-nobody-low", dest, base_url=url)
    assert nf.value.code == "voice_not_found"
    with pytest.raises(ModelUnavailableError) as down:
        download_voice("en_US-tiny-low", dest, base_url="http://127.0.0.1:9/")
    assert down.value.code == "download_failed"


def test_find_voice_downloads_when_allowed(
    voice_repo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, _ = voice_repo
    monkeypatch.setattr("autovoice.tts.piper_voice.PIPER_VOICES_URL", url)
    allowed = Settings(data_dir=tmp_path / "d", allow_downloads=True)
    files = find_voice_files("en_US-tiny-low", settings=allowed)
    assert files.model.read_bytes() == b"fake model bytes"
    assert files.model.parent == voices_dir(allowed)


# --- speech in a profile's voice ----------------------------------------------------------------------


def test_profile_conversion_is_applied(
    joe: tts.TtsVoice, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring: convert_speech gets the speech, its rate and the profile; stream converts each chunk.

    A stand-in converter halves the signal, so this runs without the conversion engine. Audio shorter
    than the conversion's minimum duration is padded with silence for it, and trimmed back after.
    """
    calls: list[tuple[int, int, object]] = []
    shifts: list[float | None] = []

    def convert_speech(
        y: np.ndarray,
        *,
        sr: int,
        profile: object,
        pitch_shift: float | None,
        device: str,
        settings: Any,
        progress: Any,
    ) -> tuple[np.ndarray, float]:
        assert device == "cpu"
        calls.append((len(y), sr, profile))
        shifts.append(pitch_shift)
        progress(1.0, "convert")
        return 0.5 * y, 3.25

    fake = types.ModuleType("autovoice.pipeline")
    fake.convert_speech = convert_speech  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autovoice.pipeline", fake)
    min_len = round(settings.min_audio_seconds * 22_050)
    profile: Any = object()
    stages: list[str] = []
    y, _ = tts.synthesize("Hi there.", profile=profile, progress=lambda f, stage: stages.append(stage))
    assert calls == [(max(len(y), min_len), 22_050, profile)]
    assert stages[-1] == "convert"
    assert np.max(np.abs(y)) == pytest.approx(0.5 * 10 ** (tts.PEAK_DBFS / 20), rel=1e-5)
    calls.clear()
    chunks = list(tts.stream(THREE, profile=profile))
    assert len(chunks) == 3
    assert [c[0] for c in calls] == [max(len(c), min_len) for c in chunks]
    assert all(c[1:] == (22_050, profile) for c in calls)
    # The first sentence gets an auto-key shift; the rest reuse it, so the stream keeps one key.
    assert shifts[-3:] == [None, 3.25, 3.25]


@pytest.mark.slow
@pytest.mark.shared_data
def test_speech_in_a_profiles_voice(speech_dir: Path, settings: Settings) -> None:
    from autovoice.pipeline.enroll import build_profile

    profile = build_profile(speaker_files(MALE[0])[:1], name="tts-target", settings=settings)
    y, sr = tts.synthesize(SENTENCE, profile=profile)
    plain, plain_sr = tts.synthesize(SENTENCE)
    assert sr == plain_sr
    assert y.dtype == np.float32
    assert y.ndim == 1
    assert rms_dbfs(y) > -40.0
    assert 0.5 < len(y) / len(plain) < 2.0  # plausible; durations vary from run to run
    for chunk in tts.stream(THREE, profile=profile):
        assert chunk.dtype == np.float32
        assert rms_dbfs(chunk) > -45.0


def test_import_is_light() -> None:
    """Importing autovoice.tts must not import piper/onnxruntime (fast `autovoice --help`)."""
    import subprocess

    code = "import sys, autovoice.tts; print('piper' in sys.modules or 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
