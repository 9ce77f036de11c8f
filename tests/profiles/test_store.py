from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import VocalRange
from autovoice.config import Settings
from autovoice.errors import ConflictError, NotFoundError, ParameterError
from autovoice.metrics.identity import IdentityBand
from autovoice.profiles import (
    FORMAT_VERSION,
    ProfileStore,
    SampleQuality,
    VoiceProfile,
    validate_profile_name,
)


def _profile(name: str = "alice", pid: str = "prof_000000000001") -> VoiceProfile:
    emb = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    return VoiceProfile(
        id=pid,
        name=name,
        created_at="2026-11-22T00:00:00+00:00",
        revision=1,
        embedding=emb / np.linalg.norm(emb),
        vocal_range=VocalRange(110.0, 440.0, 150.0, 300.0, 220.0, 40.0, "high"),
        quality=SampleQuality(45.0, 40.0, 35.0, 0.0, 0.1, 3, ["a warning"]),
        sample_names=["a.wav", "b.wav", "c.wav"],
        features={"world.mean": np.arange(4, dtype=np.float32), "world.frames": np.ones((3, 2))},
        identity_band=IdentityBand("resemblyzer", 0.88, 0.95, 0.91, 5, 7.0),
    )


def test_round_trip_by_name_and_id(settings: Settings) -> None:
    store = ProfileStore(settings)
    store.save(_profile())
    for ref in ("alice", "prof_000000000001"):
        p = store.get(ref)
        assert p.name == "alice"
        np.testing.assert_array_equal(p.embedding, _profile().embedding)
        np.testing.assert_array_equal(p.features["world.frames"], np.ones((3, 2)))
        assert p.vocal_range == _profile().vocal_range
        assert p.identity_band == _profile().identity_band
        assert p.quality.warnings == ["a warning"]
        assert p.format_version == FORMAT_VERSION
    meta = json.loads((settings.profiles_dir / "prof_000000000001" / "profile.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert [p.name for p in store.list()] == ["alice"]


def test_name_conflict_and_replace_bumps_revision(settings: Settings) -> None:
    store = ProfileStore(settings)
    store.save(_profile())
    with pytest.raises(ConflictError) as err:
        store.save(_profile(pid="prof_000000000002"))
    assert err.value.code == "profile_exists"
    replaced = store.save(_profile(pid="prof_000000000002"), replace=True)
    assert replaced.id == "prof_000000000001"
    assert replaced.revision == 2
    assert store.get("alice").revision == 2
    assert len(store.list()) == 1
    assert not [d for d in settings.profiles_dir.iterdir() if d.name.startswith(".")]


def test_delete_removes_files(settings: Settings) -> None:
    store = ProfileStore(settings)
    store.save(_profile())
    store.delete("alice")
    assert list(settings.profiles_dir.iterdir()) == []
    with pytest.raises(NotFoundError) as err:
        store.get("alice")
    assert err.value.code == "profile_not_found"
    with pytest.raises(NotFoundError):
        store.delete("alice")


def test_newer_format_is_refused(settings: Settings) -> None:
    store = ProfileStore(settings)
    store.save(_profile())
    meta_path = settings.profiles_dir / "prof_000000000001" / "profile.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConflictError) as err:
        store.get("alice")
    assert err.value.code == "profile_format_unsupported"


def test_failed_write_leaves_nothing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore(settings)

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("autovoice.profiles.store.np.savez", boom)
    with pytest.raises(OSError, match="disk full"):
        store.save(_profile())
    assert list(Path(settings.profiles_dir).iterdir()) == []
    assert store.list() == []


@pytest.mark.parametrize("bad", ["", " ", "../etc", "a/b", "x" * 65, ".hidden"])
def test_bad_names(bad: str) -> None:
    with pytest.raises(ParameterError) as err:
        validate_profile_name(bad)
    assert err.value.code == "invalid_profile_name"
