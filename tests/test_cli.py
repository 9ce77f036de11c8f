"""The CLI, mostly in-process through ``autovoice.cli.run`` (the entry point's own function), and once
through the installed ``autovoice`` script."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from autovoice.cli import run
from autovoice.config import Settings
from tests.support import FEMALE, cli_json, harmonic_tone, speaker_files

AUTOVOICE = Path(sys.executable).parent / "autovoice"


def test_help_is_fast_and_lists_commands() -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([str(AUTOVOICE), "--help"], capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0
    for command in ("profile", "analyze"):
        assert command in proc.stdout
    assert elapsed < 5  # the 1 s target is measured by bench/core.py; this guards against torch at import
    assert (
        "torch"
        not in subprocess.run(
            [sys.executable, "-c", "import autovoice.cli, sys; print(' '.join(sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    )


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["profile", "create"]) == 2
    assert run(["no-such-command"]) == 2
    assert run(["analyze", "x.wav", "--bogus"]) == 2


def test_bad_input_exits_2_with_code_and_writes_nothing(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all" * 100)
    plot = tmp_path / "plot.png"
    assert run(["analyze", str(corrupt), "--plot", str(plot), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "unsupported_format"
    assert not plot.exists()

    assert run(["profile", "create", "bad", str(corrupt), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "unsupported_format"
    assert not settings.profiles_dir.exists() or not any(settings.profiles_dir.iterdir())

    short = tmp_path / "short.wav"
    sf.write(str(short), harmonic_tone(200.0, sr=16_000, seconds=0.5), 16_000)
    assert run(["profile", "create", "bad", str(short)]) == 2
    assert "audio_too_short" in capsys.readouterr().err

    assert run(["profile", "show", "nobody", "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "profile_not_found"


def test_analyze_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "tone.wav"
    sf.write(str(wav), harmonic_tone(220.0, sr=22_050, seconds=3.0), 22_050)
    plot = tmp_path / "f0.png"
    assert run(["analyze", str(wav), "--plot", str(plot), "--json"]) == 0
    doc = cli_json(capsys)
    assert doc["vocal_range"]["median_note"] == "A3"
    assert doc["sample_rate"] == 22_050
    assert doc["voiced_seconds"] == pytest.approx(3.0, abs=0.1)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_without_voice_reports_no_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "noise.wav"
    sf.write(str(wav), (np.random.default_rng(0).standard_normal(32_000) * 0.1).astype(np.float32), 16_000)
    assert run(["analyze", str(wav), "--json"]) == 0
    doc = cli_json(capsys)
    assert doc["vocal_range"] is None
    assert doc["range_note"]


@pytest.mark.shared_data
def test_profile_lifecycle_through_the_installed_script(speech_dir: Path, settings: Settings) -> None:
    files = [str(f) for f in speaker_files(FEMALE[0])[:3]]
    env = {"AUTOVOICE_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AUTOVOICE), *args], capture_output=True, text=True, env=env, timeout=300, check=False
        )

    created = cli("profile", "create", "f1", *files, "--json")
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["name"] == "f1"
    assert doc["revision"] == 1
    assert doc["vocal_range"]["median_hz"] > 140
    assert doc["vocal_range"]["style"] == "spoken"  # read speech
    assert doc["quality"]["n_samples"] == 3

    again = cli("profile", "create", "f1", *files, "--json")
    assert again.returncode == 2
    assert json.loads(again.stdout)["error"]["code"] == "profile_exists"

    listed = json.loads(cli("profile", "list", "--json").stdout)
    assert [p["name"] for p in listed["profiles"]] == ["f1"]
    shown = cli("profile", "show", "f1")
    assert shown.returncode == 0
    assert "tessitura" in shown.stdout
    assert "voice      spoken; songs aim at a singing median of" in shown.stdout
    assert json.loads(cli("profile", "delete", doc["id"], "--json").stdout)["deleted"] == doc["id"]
    assert json.loads(cli("profile", "list", "--json").stdout)["profiles"] == []


def test_tts_writes_speech_and_refuses_empty_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hello.wav"
    assert run(["tts", "Hello, world!", "-o", str(out), "--json"]) == 0
    doc = cli_json(capsys)
    assert doc["output"] == str(out)
    data, sr = sf.read(str(out))
    assert sr == doc["sample_rate"] == 22_050
    assert 0.5 < len(data) / sr < 3.0
    empty = tmp_path / "empty.wav"
    assert run(["tts", "   ", "-o", str(empty), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "empty_text"
    assert not empty.exists()


@pytest.mark.shared_data
def test_convert_command(tmp_path: Path, speech_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(f) for f in speaker_files(FEMALE[1])[:3]]
    assert run(["profile", "create", "target", *files, "--json"]) == 0
    capsys.readouterr()
    src = speaker_files("2033")[6]
    out = tmp_path / "converted.flac"
    code = run(
        [
            "convert",
            str(src),
            "--profile",
            "target",
            "-o",
            str(out),
            "--separation",
            "none",
            "--auto-key",
            "--preset",
            "fast",
            "--json",
        ]
    )
    assert code == 0
    doc = cli_json(capsys)
    for key in ("output", "pitch_shift_semitones", "audio_seconds", "processing_seconds", "rtf", "metrics"):
        assert key in doc
    assert doc["metrics"]["similarity_gain"] > 0
    assert sf.info(str(out)).samplerate == 16_000
    assert Path(doc["report"]).is_file()

    assert "f0" not in doc or doc["f0"] is None  # contours only with --contours
    assert doc["options"]["metrics"] == "fast"
    assert doc["metrics"]["level"] == "fast"
    # Read speech, planned as speech (the content option's default, auto, decided it): the exact shift.
    assert doc["content"]["used"] == "speech"
    assert doc["content"]["decided_by"] == "auto"
    assert doc["pitch_plan"]["shift_semitones"] == pytest.approx(doc["pitch_plan"]["ideal_shift_semitones"])
    assert doc["separation_decision"]["decided_by"] == "option"

    # --content song: the same input planned as a song (whole semitones); the summary says so and why.
    song_out = tmp_path / "as_song.wav"
    common = ["convert", str(src), "-p", "target", "--auto-key", "--metrics", "off", "--preset", "fast"]
    assert run([*common, "-o", str(song_out), "--content", "song"]) == 0
    printed = capsys.readouterr().out
    assert "content    song (option: the content option says song" in printed
    assert "separation skipped: a voice alone" in printed  # auto separation: a voice alone
    report = json.loads(Path(f"{song_out}.report.json").read_text())
    assert report["content"]["used"] == "song"
    assert report["pitch_shift_semitones"] == round(report["pitch_shift_semitones"])
    assert report["separation"] == "none"
    assert report["separation_decision"]["voice_alone"] is True
    assert run([*common, "-o", str(tmp_path / "x.wav"), "--content", "poetry"]) == 2
    err = capsys.readouterr().err
    assert "error [invalid_content]" in err
    assert "hint: --content" in err

    bad = tmp_path / "bad.wav"
    assert (
        run(["convert", str(src), "--profile", "target", "-o", str(bad), "--preset", "ultra", "--json"]) == 2
    )
    assert cli_json(capsys)["error"]["code"] == "invalid_preset"
    assert run(["convert", str(src), "--profile", "nobody", "-o", str(bad), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "profile_not_found"
    assert run(["convert", str(src), "-p", "target", "-o", str(tmp_path / "no" / "x.wav"), "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "output_dir_missing"
    assert not bad.exists()
    assert not (tmp_path / "no").exists()

    # A batch: a folder with two good files and a corrupt one, -o OUTDIR/ (the README's form, a folder
    # that does not exist yet: created, and said so); exit 2, the good ones written.
    folder, outdir = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for f in speaker_files("2033")[6:8]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF not really" * 50)
    code = run(
        [
            "convert",
            str(folder),
            "-p",
            "target",
            "-o",
            f"{outdir}/",
            "--separation",
            "none",
            "--metrics",
            "off",
        ]
    )
    assert code == 2
    printed = capsys.readouterr()
    assert f"Created the output folder {outdir}/" in printed.err
    assert "INPUT" in printed.out
    assert "2 converted, 1 failed." in printed.out
    assert "unsupported_format" in printed.err
    written = sorted(p.name for p in outdir.iterdir())
    assert len([n for n in written if n.endswith(".wav")]) == 2
    assert not any(n.startswith("broken") for n in written)


def test_ctrl_c_exits_130_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import autovoice.pipeline.convert as convert_module
    from autovoice.profiles import ProfileStore

    class Target:
        id, name = "prof_x", "target"
        models = ()  # no trained model: the default engine
        embedding = vocal_range = object()  # stands for a profile built from recordings

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ProfileStore, "get", lambda self, name: Target())
    monkeypatch.setattr(convert_module, "convert_audio", interrupted)
    src = tmp_path / "in.wav"
    sf.write(str(src), harmonic_tone(220.0, sr=16_000, seconds=1.0), 16_000)
    out = tmp_path / "out.wav"
    assert run(["convert", str(src), "-p", "target", "-o", str(out), "--separation", "none"]) == 130
    assert "Interrupted." in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def _fake_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    from autovoice.profiles import ProfileStore

    class Target:
        id, name = "prof_x", "target"
        models = ()  # no trained model: the default engine
        embedding = vocal_range = object()  # stands for a profile built from recordings

    monkeypatch.setattr(ProfileStore, "get", lambda self, name: Target())


def test_batch_output_folder_with_a_slash_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_profile(monkeypatch)
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        (folder / name).write_bytes(b"RIFF not really" * 50)
    common = ["-p", "target", "--separation", "none", "--metrics", "off"]

    # Without the slash a missing folder is refused before any work, with the fix in the message.
    assert run(["convert", str(folder), "-o", str(tmp_path / "converted"), *common, "--json"]) == 2
    error = cli_json(capsys)["error"]
    assert error["code"] == "output_dir_missing"
    assert f"{tmp_path / 'converted'}/" in error["message"]
    assert not (tmp_path / "converted").exists()

    # With it, the folder (and its parents) is created and the user told; every file fails here, so
    # nothing is written and the empty folder goes again.
    out = tmp_path / "deep" / "converted"
    assert run(["convert", str(folder), "-o", f"{out}/", *common]) == 2
    printed = capsys.readouterr()
    assert f"Created the output folder {out}/" in printed.err
    assert "0 converted, 2 failed." in printed.out
    assert not out.exists()

    # A file where the folder should be is a usage error, not a crash.
    (tmp_path / "taken").write_text("x")
    assert run(["convert", str(folder), "-o", f"{tmp_path / 'taken'}/", *common, "--json"]) == 2
    assert cli_json(capsys)["error"]["code"] == "invalid_usage"


def test_one_input_into_a_new_folder_and_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import autovoice.pipeline
    import autovoice.pipeline.convert as convert_module

    _fake_profile(monkeypatch)
    seen: list[Path] = []

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    real_convert_file = convert_module.convert_file

    def spy(src: Path, **kwargs: object) -> object:
        seen.append(Path(str(kwargs["output"])))
        return real_convert_file(src, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert_module, "convert_audio", interrupted)
    monkeypatch.setattr(autovoice.pipeline, "convert_file", spy)
    src = tmp_path / "in.wav"
    sf.write(str(src), harmonic_tone(220.0, sr=16_000, seconds=1.0), 16_000)
    out = tmp_path / "new"
    assert run(["convert", str(src), "-p", "target", "-o", f"{out}/", "--separation", "none"]) == 130
    assert seen == [out / "in.target.wav"]  # "-o new/" is a folder for one input too
    assert f"Created the output folder {out}/" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]  # the new folder went again


HELP_PATHS = [
    [],
    ["convert"],
    ["analyze"],
    ["tts"],
    ["live"],
    ["engines"],
    ["serve"],
    ["worker"],
    ["profile"],
    ["profile", "create"],
    ["profile", "add-model"],
    ["profile", "list"],
    ["models", "add"],
    ["apikey", "create"],
]


@pytest.mark.parametrize("path", HELP_PATHS, ids=[" ".join(p) or "root" for p in HELP_PATHS])
def test_help_has_readable_placeholders(
    path: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert run([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Usage: autovoice" in text
    for raw in ("<bool>", "<str>", "<float>", "<int>", "<path>", "<list", "{"):
        assert raw not in text, (raw, text)


def test_help_names_arguments_and_value_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["convert", "--help"]) == 0
    text = capsys.readouterr().out
    assert "Usage: autovoice convert [OPTIONS] INPUT..." in text
    assert "OUT|OUTDIR/" in text
    assert "NUMBER" in text  # --pitch
    assert run(["profile", "create", "--help"]) == 0
    assert "Usage: autovoice profile create [OPTIONS] NAME [SAMPLE...]" in capsys.readouterr().out
    assert run(["convert"]) == 2
    assert "Missing argument 'INPUT...'" in capsys.readouterr().err


def test_help_choices_come_from_the_registries(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from autovoice.analysis.f0 import F0_METHODS
    from autovoice.engines import ENGINES
    from autovoice.metrics import REPORT_LEVELS
    from autovoice.models.local import LOCAL_NAMES
    from autovoice.pipeline import presets
    from autovoice.pipeline.live import LIVE_F0_METHODS, LIVE_SAMPLE_RATES
    from autovoice.pipeline.pitch_plan import CONTENT_CHOICES
    from autovoice.separation import SEPARATORS

    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    monkeypatch.setattr(presets, "PRESETS", (*presets.PRESETS, "studio"))  # a new preset shows up as is
    assert run(["convert", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def line(flag: str) -> str:
        return next(x for x in lines if f"{flag} " in x)

    assert f"Conversion engine: {', '.join(ENGINES.names)};" in line("--engine")
    assert f"Pitch tracker: {', '.join(F0_METHODS.names)};" in line("--f0-method")
    assert "fast, balanced, quality, studio." in line("--preset")
    assert f"Vocal separation: {', '.join(SEPARATORS.names)} " in line("--separation")
    assert f"What the input is, for --auto-key: {', '.join(CONTENT_CHOICES)}. " in line("--content")
    assert f"Quality report: {', '.join(REPORT_LEVELS)} " in line("--metrics")

    assert run(["live", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"per block: {', '.join(LIVE_F0_METHODS)} (default: fcpe)" in line("--f0-method")
    assert f"in Hz: {', '.join(map(str, LIVE_SAMPLE_RATES))}." in line("--sample-rate")
    assert "one that streams: world" in line("--engine")
    assert "studio" in line("--preset")
    assert run(["models", "add", "--help"]) == 0
    assert f"One of {', '.join(LOCAL_NAMES)}." in capsys.readouterr().out
    assert run(["tts", "--help"]) == 0
    assert "Piper voice: joe (default: joe)" in capsys.readouterr().out


def test_root_help_imports_no_registry() -> None:
    """The choices are read only for the command whose help is shown: ``autovoice --help`` and a
    group's help import no registry (they pull numpy in)."""
    code = (
        "import sys; from autovoice.cli import run; run(['--help']); run(['profile', '--help']); "
        "print(' '.join(sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = proc.stderr.split()
    assert "autovoice.cli" in loaded
    assert not {"numpy", "autovoice.engines", "autovoice.analysis.f0"} & set(loaded)


def test_hints_name_the_real_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_profile(monkeypatch)
    src = tmp_path / "in.wav"
    sf.write(str(src), harmonic_tone(220.0, sr=16_000, seconds=1.0), 16_000)
    assert run(["-v", "convert", str(src), "-p", "target", "--preset", "ultra"]) == 2
    err = capsys.readouterr().err
    assert "error [invalid_preset]" in err
    assert "hint: --preset (see `autovoice convert --help`)" in err
    assert "COMMAND" not in err


def test_verbose_anywhere_and_engines_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["engines", "--json", "-v"]) == 0
    doc = cli_json(capsys)
    names = [c["name"] for c in doc["engines"]]
    assert names[0] == "world"
    assert {"rvc", "sovits"} <= set(names)
    assert doc["engines"][0]["options"]["properties"]["knn_k"]
    assert {"fcpe", "world", "crepe"} <= {c["name"] for c in doc["f0_methods"]}
    assert {"auto", "spleeter", "demucs", "none"} == {c["name"] for c in doc["separation"]}
    assert [c["name"] for c in doc["contents"]] == ["auto", "speech", "song"]
    assert doc["defaults"]["content"] == "auto"
    import logging

    assert logging.getLogger("autovoice").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("numba").getEffectiveLevel() >= logging.WARNING
