"""``autovoice live``: a file streamed through the live path, device errors without PortAudio, usage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from autovoice.cli import run
from autovoice.config import Settings
from tests.support import breathy_voice


@pytest.fixture
def stored_tone(settings: Settings, live_tone_profile: object) -> str:
    from autovoice.profiles import ProfileStore

    ProfileStore(settings).save(live_tone_profile)  # type: ignore[arg-type]
    return "tone"


def _portaudio_present() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return False
    return True


def test_file_streams_through_the_live_path(
    stored_tone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.wav"
    y = breathy_voice(np.full(int(1.5 * 24_000), 180.0), sr=24_000)
    sf.write(src, y, 24_000)
    out = tmp_path / "out.wav"
    args = ["live", "--profile", stored_tone, "--pitch", "2", "--f0-method", "dio", "--block-ms", "40"]
    rc = run([*args, "-i", str(src), "-o", str(out), "--no-deadlines", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["latency"]["total_ms"] == pytest.approx(94.0)
    assert doc["block_choice"] is None  # a block given is used as it is
    assert doc["stats"]["dropped"] == 0
    assert doc["stats"]["converted"] == doc["stats"]["blocks"]
    got, sr = sf.read(out, dtype="float32")
    assert sr == 16_000  # the stream's rate (--sample-rate)
    assert len(got) == int(1.5 * 16_000)
    assert np.abs(got).max() > 0.01


def test_usage_and_device_errors_exit_2(
    stored_tone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["live", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_usage"
    assert run(["live", "--profile", stored_tone, "-o", str(tmp_path / "x.wav"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_usage"
    assert run(["live", "--profile", stored_tone, "--block-ms", "45", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_parameter"
    assert run(["live", "--profile", stored_tone, "--sample-rate", "22050", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_sample_rate"
    assert run(["live", "--profile", "nobody", "-i", str(tmp_path / "x.wav"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "profile_not_found"
    if not _portaudio_present():
        for args in (["live", "--list-devices", "--json"], ["live", "--profile", stored_tone, "--json"]):
            assert run(args) == 2
            err = json.loads(capsys.readouterr().out)["error"]
            assert err["code"] == "audio_devices_unavailable"
            assert "--input" in err["message"]


def test_the_block_is_measured_by_default_and_said(
    stored_tone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, breathy_voice(np.full(16_000, 180.0), sr=16_000), 16_000)
    out = tmp_path / "out.wav"
    rc = run(["live", "--profile", stored_tone, "-i", str(src), "-o", str(out), "--no-deadlines"])
    text = capsys.readouterr().out
    if rc == 2:  # an overloaded test machine may honestly be too slow for every block
        assert "live_too_slow" in text
        return
    assert rc == 0
    assert "measured on this machine in" in text
    assert "% of the block" in text
    rc = run(["live", "--profile", stored_tone, "-i", str(src), "-o", str(out), "--no-deadlines", "--json"])
    doc = json.loads(capsys.readouterr().out)
    choice = doc["block_choice"]
    assert doc["options"]["block_ms"] == choice["block_ms"] == doc["latency"]["block_ms"]
    assert doc["latency"]["total_ms"] == pytest.approx(choice["latency_ms"])
    assert choice["p99_ms"] <= 0.5 * choice["block_ms"]
    assert choice["trials"][-1]["ok"]
    assert not any(t["ok"] for t in choice["trials"][:-1])
    assert choice["reason"].startswith(f"{choice['block_ms']} ms blocks")


def test_too_slow_for_every_block_exits_2_before_writing(
    stored_tone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No block converted within 0.01 % of its time: refused with live_too_slow, no output file."""
    from autovoice.pipeline.live import calibrate

    monkeypatch.setattr(calibrate, "AUTO_MAX_SHARE", 0.0001)
    src = tmp_path / "in.wav"
    sf.write(src, breathy_voice(np.full(16_000, 180.0), sr=16_000), 16_000)
    out = tmp_path / "out.wav"
    rc = run(
        ["live", "--profile", stored_tone, "--f0-method", "dio", "-i", str(src), "-o", str(out), "--json"]
    )
    assert rc == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "live_too_slow"
    assert err["details"]["trials"][-1]["block_ms"] == calibrate.AUTO_BLOCKS_MS[-1]
    assert not out.exists()
