"""``autovoice profile create --model``, ``profile add-model``, ``remove-model`` and ``show``, in process
through ``autovoice.cli.run``, with random-weights checkpoints in the real tools' layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autovoice.cli import run
from autovoice.config import Settings
from tests.support import cli_json, stored_profile_files

fakes = pytest.importorskip("tests.engines.fakes")


@pytest.fixture(scope="module")
def rvc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("rvc")
    fakes.write_rvc(d / "alice.pth", version="v2", sr=48000)
    fakes.write_index(d / "alice.index", dim=768)
    return d / "alice.pth", d / "alice.index"


def test_model_only_profile_add_show_remove(
    settings: Settings,
    rvc: tuple[Path, Path],
    sovits_model: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pth, index = rvc
    assert run(["profile", "create", "alice", "--model", str(pth), "--index", str(index), "--json"]) == 0
    doc = cli_json(capsys)
    assert doc["vocal_range"] is None
    assert doc["samples"] == []
    (m,) = doc["models"]
    assert (m["kind"], m["variant"], m["sample_rate"], m["f0"], m["index_dim"]) == (
        "rvc",
        "rvc-v2",
        48000,
        True,
        768,
    )
    assert m["files"]["model"]["original"] == "alice.pth"

    assert (
        run(
            [
                "profile",
                "add-model",
                "alice",
                str(sovits_model[0]),
                "--config",
                str(sovits_model[1]),
                "--json",
            ]
        )
        == 0
    )
    added = cli_json(capsys)
    assert added["kind"] == "sovits"
    assert added["variant"] == "sovits-4.1"

    assert run(["profile", "show", "alice"]) == 0
    out = capsys.readouterr().out
    assert "recordings none" in out
    assert f"model      {m['id']}" in out
    assert "rvc rvc-v2, 48 kHz, F0" in out
    assert added["id"] in out
    assert "sovits sovits-4.1" in out

    assert run(["profile", "list", "--json"]) == 0
    (listed,) = cli_json(capsys)["profiles"]
    assert [x["id"] for x in listed["models"]] == [m["id"], added["id"]]

    assert run(["profile", "remove-model", "alice", m["id"], "--json"]) == 0
    assert cli_json(capsys)["deleted"] == m["id"]
    assert run(["profile", "show", "alice", "--json"]) == 0
    assert [x["id"] for x in cli_json(capsys)["models"]] == [added["id"]]
    assert not any(m["id"] in p for p in stored_profile_files(settings))
    assert run(["profile", "remove-model", "alice", m["id"], "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "model_not_found"

    # A model-only profile converts with a manual pitch; auto key needs recordings (checked first).
    song = pth.parent / "song.wav"
    song.write_bytes(b"")
    assert run(["convert", str(song), "--profile", "alice", "--auto-key", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "auto_key_needs_recordings"
    assert "hint: --pitch N (instead of --auto-key)" in captured.err
    assert run(["convert", str(song), "--profile", "alice", "--engine", "world", "--pitch", "0"]) == 2
    err = capsys.readouterr().err
    assert "profile_needs_recordings" in err
    assert "hint: --engine" in err


def test_bad_models_exit_2_and_store_nothing(
    settings: Settings,
    tmp_path: Path,
    rvc: tuple[Path, Path],
    sovits_model: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = tmp_path / "readme.pth"
    text.write_text("not a checkpoint")
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(rvc[0].read_bytes()[:4000])
    evil = tmp_path / "evil.pth"
    marker = tmp_path / "RAN"
    fakes.write_evil_checkpoint(evil, marker)
    cfg = json.loads(sovits_model[1].read_text())
    cfg["model"]["hidden_channels"] = int(cfg["model"]["hidden_channels"]) * 2
    bad_config = tmp_path / "config.json"
    bad_config.write_text(json.dumps(cfg))
    cases = [
        (["--model", str(text)], "invalid_checkpoint"),
        (["--model", str(truncated)], "invalid_checkpoint"),
        (["--model", str(evil)], "untrusted_checkpoint"),
        (["--model", str(sovits_model[0]), "--config", str(bad_config)], "model_config_mismatch"),
        (["--model", str(sovits_model[0])], "model_config_required"),
        (["--model", str(tmp_path / "missing.pth")], "file_not_found"),
    ]
    for args, code in cases:
        assert run(["profile", "create", "bob", *args, "--json"]) == 2, code
        assert cli_json(capsys)["error"]["code"] == code
        assert stored_profile_files(settings) == [], code
    assert not marker.exists()

    assert run(["profile", "create", "bob", "--index", str(rvc[1])]) == 2  # companions need --model
    assert run(["profile", "create", "bob"]) == 2  # neither recordings nor a model
    assert "invalid_usage" in capsys.readouterr().err

    assert run(["profile", "create", "bob", "--model", str(rvc[0]), "--json"]) == 0
    before = stored_profile_files(settings)
    capsys.readouterr()
    assert run(["profile", "add-model", "bob", str(evil), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "untrusted_checkpoint"
    assert run(["profile", "add-model", "bob", str(rvc[0]), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "model_exists"
    assert run(["profile", "add-model", "nobody", str(rvc[0]), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "profile_not_found"
    assert stored_profile_files(settings) == before
    assert not marker.exists()

    # Content encoders come from the user's own file or folder; bad ones are refused with a code.
    assert run(["models", "add", "nonsense", str(rvc[0]), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "unknown_model"
    assert run(["models", "add", "hubert_base", str(tmp_path / "missing.pt"), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "file_not_found"
    assert run(["models", "add", "hubert_base", str(evil), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "untrusted_checkpoint"
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_song_converts_end_to_end_with_the_profiles_rvc_model(
    tmp_path: Path, speech_dir: Path, rvc: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Recordings + an RVC v2 48k model (random weights) in one profile; 8 s of the shared song converted
    with Spleeter separation, auto key from the recordings' range, remix and the fast report. The engine
    follows the model (no --engine given)."""
    import soundfile as sf

    from autovoice.audio import load, save
    from tests.support import FEMALE, SONG, speaker_files

    if not SONG.is_file():
        pytest.skip(f"shared song not found at {SONG}")
    # A 768-wide content encoder in fairseq's layout (random weights, small feed-forward): the user's own
    # hubert_base, added as `autovoice models add` adds it.
    hubert = fakes.write_fairseq_hubert(tmp_path / "hubert_base.pt", hidden=768, layers=12, heads=12, ffn=32)
    assert run(["models", "add", "hubert_base", str(hubert), "--json"]) == 0
    assert cli_json(capsys)["name"] == "hubert_base"
    from autovoice.models.cache import CACHE

    CACHE.clear()  # models and engines are cached per process by name: drop other tests' (other files)

    samples = [str(f) for f in speaker_files(FEMALE[0])[:3]]
    args = ["profile", "create", "singer", *samples, "--model", str(rvc[0]), "--index", str(rvc[1]), "--json"]
    assert run(args) == 0
    prof = cli_json(capsys)
    assert prof["vocal_range"]["median_hz"] > 140
    assert [m["kind"] for m in prof["models"]] == ["rvc"]

    y, sr = load(SONG)
    song = save(tmp_path / "song.flac", y[:, 40 * sr : 48 * sr], sr=sr)
    out = tmp_path / "song.singer.wav"
    args = ["convert", str(song), "-p", "singer", "-o", str(out), "--auto-key", "--separation", "spleeter"]
    assert run([*args, "--preset", "fast", "--json"]) == 0
    doc = cli_json(capsys)
    assert doc["engine"] == "rvc"
    assert doc["separation"] == "spleeter"
    assert doc["options"]["auto_key"] is True
    assert doc["pitch_shift_semitones"] % 12 == 0  # a song with its accompaniment moves by octaves
    assert doc["metrics"]["level"] == "fast"
    assert doc["metrics"]["pitch"]["voiced_frames_compared"] > 0
    info = sf.info(str(out))
    assert info.samplerate == sr
    assert info.channels == 2
    assert abs(info.duration - 8.0) < 0.01
    assert Path(doc["report"]).is_file()


def test_models_add_rmvpe_registers_the_users_file(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`autovoice models add rmvpe PATH` checks the file with RMVPE's own loader, then the rmvpe F0
    method runs from it."""
    import torch

    from autovoice.analysis import estimate_f0
    from tests.engines.parity.cases import build_rmvpe, rmvpe_audio

    _, state = build_rmvpe()
    weights = tmp_path / "rmvpe.pt"
    torch.save(state, weights)
    assert run(["models", "add", "rmvpe", str(weights), "--json"]) == 0
    assert Path(cli_json(capsys)["path"]).is_file()
    track = estimate_f0(rmvpe_audio(), sr=16_000, method="rmvpe")
    assert track.f0.shape[0] > 0
