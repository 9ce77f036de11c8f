"""The user's own weights (``autovoice models add``): the caller's check, the copy, its hash check at use,
one "add it" message, one embedder under two names, and ``models/`` as the bottom layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError, ModelUnavailableError, ParameterError
from autovoice.models import weights
from autovoice.models.local import add_local, local_source, not_installed

MODELS = Path(weights.__file__).parent


def _refuse(path: Path) -> None:
    raise ParameterError("invalid_checkpoint", f"{path.name} is not it.", {})


def test_models_package_imports_nothing_above_it() -> None:
    """``models/`` is the bottom layer: no import (module level or local) of analysis, engines, profiles,
    pipeline, service or the CLI."""
    above = ("analysis", "engines", "profiles", "pipeline", "service", "cli", "jobs", "separation", "tts")
    found = []
    for f in sorted(MODELS.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [
                f"{f.name}: {n}" for n in names if n.startswith("autovoice.") and n.split(".")[1] in above
            ]
    assert found == []


def test_the_callers_check_decides_and_a_refused_file_leaves_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    src = tmp_path / "rmvpe.pt"
    src.write_bytes(b"weights")
    with pytest.raises(ParameterError) as err:
        add_local("rmvpe", src, check=_refuse, settings=settings)
    assert err.value.code == "invalid_checkpoint"
    assert local_source("rmvpe", settings=settings) is None
    assert not (settings.model_cache_dir / "local" / "rmvpe").exists()

    seen: list[Path] = []
    stored = add_local("rmvpe", src, check=seen.append, settings=settings)
    assert seen == [src]
    assert stored.read_bytes() == b"weights"
    assert local_source("rmvpe", settings=settings) == stored


def test_unknown_name_and_missing_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ParameterError) as err:
        add_local("wavlm", tmp_path, check=lambda p: None, settings=settings)
    assert err.value.code == "unknown_model"
    assert "rmvpe" in err.value.message
    with pytest.raises(AutoVoiceError) as err2:
        add_local("rmvpe", tmp_path / "nope.pt", check=lambda p: None, settings=settings)
    assert err2.value.code == "file_not_found"


def test_a_copy_is_hashed_once_per_process_and_a_changed_copy_is_refused(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "_VERIFIED", weights._VerifiedFiles())
    src = tmp_path / "folder"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"\0" * 1000)
    stored = add_local("contentvec", src, check=lambda p: None, settings=settings)
    assert sorted(p.name for p in stored.iterdir()) == ["config.json", "model.safetensors"]

    hashed: list[str] = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p, **kw: hashed.append(Path(p).name) or real(p, **kw))
    for _ in range(3):
        assert local_source("contentvec", settings=settings) == stored
    assert sorted(hashed) == ["config.json", "model.safetensors"]  # once each, not three times

    (stored / "model.safetensors").write_bytes(b"\1" * 1000)  # same size, new content and mtime
    with pytest.raises(ModelUnavailableError) as err:
        local_source("contentvec", settings=settings)
    assert err.value.code == "weights_corrupt"
    assert "autovoice models add contentvec PATH" in err.value.message


def test_one_add_it_message() -> None:
    enc = not_installed("hubert_base", needed_by="This rvc model")
    assert enc.code == "model_unavailable"
    assert enc.message.startswith(
        "This rvc model needs the 'hubert_base' content encoder, which is not installed."
    )
    assert "`autovoice models add hubert_base PATH` (a fairseq .pt" in enc.message
    assert "`autovoice models download hubert_base`" in enc.message
    rmvpe = not_installed("rmvpe", needed_by="The rmvpe F0 method")
    assert "needs RMVPE's rmvpe.pt" in rmvpe.message
    assert "`autovoice models add rmvpe PATH`" in rmvpe.message


def test_hash_while_copying_stops_at_the_limit(tmp_path: Path) -> None:
    import hashlib

    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 3000)
    dst = tmp_path / "b.bin"
    assert weights.sha256_file(src, copy_to=dst) == hashlib.sha256(b"x" * 3000).hexdigest()
    assert dst.read_bytes() == src.read_bytes()
    with pytest.raises(AutoVoiceError) as err:
        weights.sha256_file(src, copy_to=tmp_path / "c.bin", max_bytes=2999, what="voice.pth")
    assert err.value.code == "file_too_large"
    assert err.value.details == {"filename": "voice.pth", "limit_bytes": 2999}


def test_hubert_base_and_contentvec_are_one_embedder(tmp_path: Path, settings: Settings) -> None:
    """A copy added under either name serves both; the asked name wins when both exist."""
    from autovoice.models.hubert import encoder_present, encoder_source

    assert not encoder_present("hubert_base", settings=settings)
    with pytest.raises(ModelUnavailableError) as err:
        encoder_source("contentvec", settings=settings)
    assert "`autovoice models add contentvec PATH`" in err.value.message

    a = tmp_path / "a.pt"
    a.write_bytes(b"a")
    stored_a = add_local("contentvec", a, check=lambda p: None, settings=settings)
    for name in ("hubert_base", "contentvec"):
        assert encoder_present(name, settings=settings)
        assert encoder_source(name, settings=settings) == stored_a
    b = tmp_path / "b.pt"
    b.write_bytes(b"b")
    stored_b = add_local("hubert_base", b, check=lambda p: None, settings=settings)
    assert encoder_source("hubert_base", settings=settings) == stored_b
    assert encoder_source("contentvec", settings=settings) == stored_a
    with pytest.raises(ParameterError) as err2:
        encoder_source("wavlm", settings=settings)
    assert err2.value.code == "unknown_model"


def test_every_truncation_of_a_legacy_checkpoint_is_refused_with_a_code(tmp_path: Path) -> None:
    """A legacy (non-zip) torch file cut anywhere is refused with a code, never a raw error (torch raises
    EOFError, UnpicklingError, IndexError, RuntimeError or struct.error depending on the cut; a cut inside
    a pickled name reads as a request to run code)."""
    import io

    import torch

    from autovoice.errors import ParameterError
    from autovoice.models.safe_load import load_checkpoint

    buf = io.BytesIO()
    torch.save({"a": torch.zeros(3)}, buf, _use_new_zipfile_serialization=False)
    whole = buf.getvalue()
    path = tmp_path / "cut.pth"
    for cut in range(1, len(whole)):
        path.write_bytes(whole[:cut])
        with pytest.raises(ParameterError) as err:
            load_checkpoint(path)
        assert err.value.code in ("invalid_checkpoint", "untrusted_checkpoint"), cut
