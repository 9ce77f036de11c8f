"""Trained models stored with a profile: staging (copy, hash, inspect), storing, listing, removing, and
refusals that leave nothing on disk. The checkpoints are random-weights files written in the real
tools' layouts by ``tests.engines.fakes``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import VocalRange
from autovoice.config import Settings
from autovoice.errors import AudioError, AutoVoiceError, ConflictError, NotFoundError, ParameterError
from autovoice.pipeline.enroll import enroll, stage_model
from autovoice.profiles import FORMAT_VERSION, ProfileStore, SampleQuality, VoiceProfile
from autovoice.profiles.profile import model_only_profile
from autovoice.profiles.trained import MODELS_DIR, StagedModel, check_conversion, default_engine

fakes = pytest.importorskip("tests.engines.fakes")


def _recorded(name: str = "alice", pid: str = "prof_00000000000a") -> VoiceProfile:
    emb = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    return VoiceProfile(
        id=pid,
        name=name,
        created_at="2026-11-22T00:00:00+00:00",
        revision=1,
        embedding=emb / np.linalg.norm(emb),
        vocal_range=VocalRange(110.0, 440.0, 150.0, 300.0, 220.0, 40.0, "high"),
        quality=SampleQuality(45.0, 40.0, 35.0, 0.0, 0.1, 3, []),
        sample_names=["a.wav"],
        features={"world.mean": np.arange(4, dtype=np.float32)},
    )


@pytest.fixture(scope="module")
def rvc_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("rvc")
    pth = d / "alice_e300.pth"
    fakes.write_rvc(pth, version="v2", sr=48000)
    index = d / "added_IVF1_Flat_nprobe_1_alice_v2.index"
    fakes.write_index(index, dim=768)
    return pth, index


@pytest.fixture(scope="module")
def sovits_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pth, config = fakes.write_sovits(tmp_path_factory.mktemp("sovits"))
    return Path(pth), Path(config)


def _leftovers(settings: Settings) -> list[str]:
    """Everything under the profiles folder except stored profiles' own files."""
    root = settings.profiles_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rvc_model_is_staged_stored_and_read_back(settings: Settings, rvc_files: tuple[Path, Path]) -> None:
    pth, index = rvc_files
    store = ProfileStore(settings)
    store.save(_recorded())
    with stage_model(pth, index=index, settings=settings) as staged:
        assert staged.folder.parent == settings.profiles_dir
        assert staged.folder.name.startswith(".stage-")
        added = store.add_model("alice", staged)
    assert added.kind == "rvc"
    assert added.info.variant == "rvc-v2"
    assert added.info.sample_rate == 48000
    assert added.info.f0
    assert added.info.index_dim == 768
    assert added.name == "alice_e300"
    assert added.id.startswith("mdl_")
    assert added.stored["model"].sha256 == _sha(pth)
    assert added.stored["model"].size == pth.stat().st_size
    assert added.stored["index"].original == index.name
    assert _leftovers(settings) == [] or _leftovers(settings) == []

    p = store.get("alice")
    assert [m.id for m in p.models] == [added.id]
    m = p.models[0]
    folder = settings.profiles_dir / p.id / MODELS_DIR / added.id
    assert m.files.pth == folder / "model.pth"
    assert m.files.index == folder / "model.index"
    assert m.files.config is None
    assert _sha(m.files.pth) == _sha(pth)
    assert p.format_version == FORMAT_VERSION == 2
    doc = p.summary()
    assert doc["engines"] == ["rvc", "world"]
    public = doc["models"][0]
    assert public["kind"] == "rvc"
    assert public["variant"] == "rvc-v2"
    assert public["sample_rate"] == 48000
    assert public["embedder"] in ("hubert_base", "contentvec")
    assert public["index_dim"] == 768
    assert public["size_bytes"] == pth.stat().st_size + index.stat().st_size
    assert str(settings.data_dir) not in json.dumps(doc)  # no server paths in the public form
    assert default_engine(p) == "rvc"
    assert [name for name in _leftovers(settings) if name != ".lock"] == []


def test_sovits_model_only_profile(settings: Settings, sovits_files: tuple[Path, Path]) -> None:
    pth, config = sovits_files
    store = ProfileStore(settings)
    with stage_model(pth, config=config, settings=settings) as staged:
        saved = store.save(model_only_profile("bob"), models=[staged])
    p = store.get("bob")
    assert p.id == saved.id
    assert not p.has_recordings
    assert p.embedding is None
    assert p.vocal_range is None
    assert p.quality is None
    assert p.features == {}
    (m,) = p.models
    assert m.kind == "sovits"
    assert m.info.variant == "sovits-4.1"
    assert m.files.config is not None
    assert json.loads(m.files.config.read_text()) == json.loads(config.read_text())
    doc = p.summary()
    assert doc["vocal_range"] is None
    assert doc["quality"] is None
    assert doc["embedding_dim"] == 0
    assert doc["engines"] == ["sovits"]
    assert _leftovers(settings) == []


def test_version_1_profiles_still_load(settings: Settings) -> None:
    store = ProfileStore(settings)
    store.save(_recorded())
    meta_path = settings.profiles_dir / "prof_00000000000a" / "profile.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 1
    del meta["models"]
    meta_path.write_text(json.dumps(meta))
    p = store.get("alice")
    assert p.format_version == 1
    assert p.models == []
    assert p.vocal_range is not None


def test_replace_keeps_models_and_remove_deletes_files(
    settings: Settings, rvc_files: tuple[Path, Path]
) -> None:
    pth, index = rvc_files
    store = ProfileStore(settings)
    store.save(_recorded())
    with stage_model(pth, index=index, settings=settings) as staged:
        added = store.add_model("alice", staged)
    # Rebuilt from new recordings: the model stays.
    store.save(_recorded(pid="prof_00000000000b"), replace=True)
    p = store.get("alice")
    assert p.revision == 2
    assert [m.id for m in p.models] == [added.id]
    assert p.models[0].files.pth.is_file()

    with stage_model(pth, settings=settings) as again, pytest.raises(ConflictError) as err:
        store.add_model("alice", again)
    assert err.value.code == "model_exists"

    removed = store.remove_model("alice", added.id)
    assert removed.id == added.id
    assert store.get("alice").models == []
    assert not (settings.profiles_dir / p.id / MODELS_DIR / added.id).exists()
    with pytest.raises(NotFoundError) as nf:
        store.remove_model("alice", added.id)
    assert nf.value.code == "model_not_found"
    assert _leftovers(settings) == []


def _bad_inputs(
    tmp: Path, sovits: tuple[Path, Path], rvc: tuple[Path, Path]
) -> list[tuple[str, dict[str, Path], str]]:
    text = tmp / "notes.pth"
    text.write_text("this is not a checkpoint\n")
    truncated = tmp / "truncated.pth"
    data = rvc[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    evil = tmp / "evil.pth"
    marker = tmp / "RAN"
    fakes.write_evil_checkpoint(evil, marker)
    bad_config = tmp / "config.json"
    cfg = json.loads(sovits[1].read_text())
    cfg["model"]["hidden_channels"] = int(cfg["model"]["hidden_channels"]) * 2
    bad_config.write_text(json.dumps(cfg))
    wrong_index = tmp / "wrong.index"
    fakes.write_index(wrong_index, dim=256)
    return [
        ("non-checkpoint", {"model": text}, "invalid_checkpoint"),
        ("truncated", {"model": truncated}, "invalid_checkpoint"),
        ("code in the pickle", {"model": evil}, "untrusted_checkpoint"),
        ("config does not match", {"model": sovits[0], "config": bad_config}, "model_config_mismatch"),
        ("so-vits without config", {"model": sovits[0]}, "model_config_required"),
        ("index of another dimension", {"model": rvc[0], "index": wrong_index}, "model_config_mismatch"),
    ]


def test_refused_models_leave_nothing_stored(
    settings: Settings, tmp_path: Path, sovits_files: tuple[Path, Path], rvc_files: tuple[Path, Path]
) -> None:
    store = ProfileStore(settings)
    store.save(_recorded())
    before = json.loads((settings.profiles_dir / "prof_00000000000a" / "profile.json").read_text())
    for label, files, code in _bad_inputs(tmp_path, sovits_files, rvc_files):
        model = files.pop("model")
        with pytest.raises(AutoVoiceError) as err:
            stage_model(model, settings=settings, **files)  # type: ignore[arg-type]
        assert err.value.code == code, label
        assert err.value.caller_error, label
        assert str(settings.data_dir) not in err.value.message + str(err.value.details), label
        assert "model.pth" not in err.value.message, label  # the user's file names, not the staged copies
        assert _leftovers(settings) == [], label
    assert not (tmp_path / "RAN").exists()  # the pickle's code never ran
    after = json.loads((settings.profiles_dir / "prof_00000000000a" / "profile.json").read_text())
    assert after == before
    assert not (settings.profiles_dir / "prof_00000000000a" / MODELS_DIR).exists()


def test_missing_file_and_size_limit(
    settings: Settings, tmp_path: Path, rvc_files: tuple[Path, Path]
) -> None:
    with pytest.raises(NotFoundError) as err:
        stage_model(tmp_path / "nope.pth", settings=settings)
    assert err.value.code == "file_not_found"
    small = settings.model_copy(update={"max_file_bytes": 1000})
    with pytest.raises(AutoVoiceError) as big:
        stage_model(rvc_files[0], settings=small)
    assert big.value.code == "file_too_large"
    assert big.value.http_status == 413
    assert _leftovers(settings) == []


def test_conversion_needs(settings: Settings, rvc_files: tuple[Path, Path]) -> None:
    store = ProfileStore(settings)
    with stage_model(rvc_files[0], settings=settings) as staged:
        store.save(model_only_profile("carol"), models=[staged])
    p = store.get("carol")
    with pytest.raises(ParameterError) as err:
        check_conversion(p, engine="rvc", auto_key=True)
    assert err.value.code == "auto_key_needs_recordings"
    with pytest.raises(ParameterError) as err:
        check_conversion(p, engine="world", auto_key=False)
    assert err.value.code == "profile_needs_recordings"
    with pytest.raises(ParameterError) as err:
        check_conversion(p, engine="sovits", auto_key=False)
    assert err.value.code == "model_not_found"
    with pytest.raises(ParameterError) as err:
        check_conversion(p, engine="rvc", auto_key=False, engine_options={"model_id": "mdl_000000000000"})
    assert err.value.code == "model_not_found"
    recorded = _recorded()
    check_conversion(recorded, engine="world", auto_key=True)  # recordings: world and auto key are fine
    with pytest.raises(ParameterError) as err:
        check_conversion(recorded, engine="rvc", auto_key=True)
    assert err.value.code == "model_not_found"


def test_model_only_profile_speaks_through_its_model(settings: Settings, tmp_path: Path) -> None:
    """Speech (the TTS path) into a profile made from an RVC v1 model alone: the engine follows the model,
    the shift is 0 (no range to move onto), and a missing content encoder is caught before any work."""
    from autovoice.errors import ModelUnavailableError
    from autovoice.models.cache import CACHE
    from autovoice.models.hubert import add_local
    from autovoice.pipeline import convert_speech
    from tests.support import harmonic_tone

    pth = fakes.write_rvc(tmp_path / "voice.pth", version="v1", sr=40000)
    store = ProfileStore(settings)
    with stage_model(pth, settings=settings) as staged:
        store.save(model_only_profile("dave"), models=[staged])
    p = store.get("dave")
    sr = 16_000
    y = harmonic_tone(180.0, sr=sr, seconds=1.5)
    with pytest.raises(ModelUnavailableError) as err:
        check_conversion(p, engine="rvc", auto_key=False, settings=settings)
    assert err.value.code == "model_unavailable"
    assert "autovoice models add hubert_base" in err.value.message

    add_local(
        "hubert_base", fakes.write_fairseq_hubert(tmp_path / "hubert_base.pt", layers=9), settings=settings
    )
    CACHE.clear()  # engines keep the settings they were built with (an earlier test's data dir)
    out, shift = convert_speech(y, sr=sr, profile=p, settings=settings)
    assert shift == 0.0
    assert out.shape == y.shape
    assert np.isfinite(out).all()
    assert np.sqrt(np.mean(out**2)) > 1e-3


def test_enroll_a_model_only_profile(settings: Settings, rvc_files: tuple[Path, Path]) -> None:
    """The one way the CLI and the service create a profile: the model is staged, the profile saved with it,
    and the staging folder is gone."""
    pth, index = rvc_files
    store = ProfileStore(settings)
    saved: list[int] = []

    def save(profile: VoiceProfile, staged: Sequence[StagedModel]) -> VoiceProfile:
        saved.append(len(staged))
        return store.save(profile, models=staged)

    made = enroll(
        " erin ", model=lambda: stage_model(pth, index=index, settings=settings), save=save, settings=settings
    )
    assert saved == [1]
    p = store.get("erin")
    assert p.id == made.id
    assert not p.has_recordings
    assert [m.kind for m in p.models] == ["rvc"]
    assert p.models[0].files.index is not None
    assert [name for name in _leftovers(settings) if name != ".lock"] == []


def test_enroll_refusals_store_nothing_and_leave_no_staged_files(
    settings: Settings, rvc_files: tuple[Path, Path]
) -> None:
    from tests.support import harmonic_tone

    store = ProfileStore(settings)
    staged_calls: list[str] = []

    def stage() -> StagedModel:
        staged_calls.append("staged")
        return stage_model(rvc_files[0], settings=settings)

    def save(profile: VoiceProfile, staged: Sequence[StagedModel]) -> VoiceProfile:
        return store.save(profile, models=staged)

    with pytest.raises(ParameterError) as err:
        enroll("bad/name", model=stage, save=save, settings=settings)
    assert err.value.code == "invalid_profile_name"
    with pytest.raises(ParameterError) as err:
        enroll("nobody", save=save, settings=settings)
    assert err.value.code == "no_samples"
    assert staged_calls == []  # both refused before any file is copied

    # Too little voice: the model was staged first (fast), the analysis refuses, the staged copy goes.
    y = np.concatenate([harmonic_tone(200.0, sr=16_000, seconds=2.0), np.zeros(16_000 * 3, np.float32)])
    with pytest.raises(AudioError) as short:
        enroll("frank", [(y, 16_000)], model=stage, save=save, settings=settings)
    assert short.value.code in ("insufficient_voiced_audio", "no_voiced_audio")
    assert staged_calls == ["staged"]
    assert not store.exists("frank")
    assert [name for name in _leftovers(settings) if name != ".lock"] == []
