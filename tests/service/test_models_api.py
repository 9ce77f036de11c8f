"""A profile's trained models through the real app: ``POST``/``GET``/``DELETE /api/v1/profiles/{id}/models``,
a model-only ``POST /api/v1/profiles``, and refusals (422 with a code, 413) that store nothing: no files,
no index row. Checkpoints are random-weights files in the real tools' layouts (``tests.engines.fakes``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from autovoice.config import Settings
from tests.service.conftest import running_app
from tests.support import stored_profile_files

fakes = pytest.importorskip("tests.engines.fakes")


@pytest.fixture(scope="module")
def rvc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("rvc")
    fakes.write_rvc(d / "alice_e300.pth", version="v2", sr=48000)
    fakes.write_index(d / "added_alice.index", dim=768)
    return d / "alice_e300.pth", d / "added_alice.index"


def _part(field: str, path: Path) -> tuple[str, tuple[str, bytes, str]]:
    return (field, (path.name, path.read_bytes(), "application/octet-stream"))


def _model_only(client: TestClient, name: str, rvc: tuple[Path, Path]) -> dict[str, Any]:
    r = client.post(
        "/api/v1/profiles", data={"name": name}, files=[_part("model", rvc[0]), _part("index", rvc[1])]
    )
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_model_only_profile_then_add_list_delete(
    settings: Settings, rvc: tuple[Path, Path], sovits_model: tuple[Path, Path]
) -> None:
    with running_app() as client:
        prof = _model_only(client, "Alice", rvc)
        assert prof["vocal_range"] is None
        assert prof["quality"] is None
        assert prof["samples"] == []
        (m,) = prof["models"]
        assert (m["kind"], m["variant"], m["sample_rate"], m["f0"], m["index_dim"]) == (
            "rvc",
            "rvc-v2",
            48000,
            True,
            768,
        )
        assert m["files"]["model"]["original"] == "alice_e300.pth"
        assert m["name"] == "alice_e300"
        assert m["size_bytes"] == rvc[0].stat().st_size + rvc[1].stat().st_size

        pid = prof["id"]
        r = client.post(
            f"/api/v1/profiles/{pid}/models",
            files=[_part("model", sovits_model[0]), _part("config", sovits_model[1])],
        )
        assert r.status_code == 201, r.text
        so = r.json()
        assert so["kind"] == "sovits"
        assert so["variant"] == "sovits-4.1"
        assert so["files"]["config"]["sha256"]

        listed = client.get(f"/api/v1/profiles/{pid}/models").json()["models"]
        assert [x["id"] for x in listed] == [m["id"], so["id"]]
        assert [x["id"] for x in client.get(f"/api/v1/profiles/{pid}").json()["models"]] == [
            m["id"],
            so["id"],
        ]
        assert client.get("/api/v1/profiles").json()["profiles"][0]["engines"] == ["rvc", "sovits"]
        assert str(settings.data_dir) not in json.dumps(listed)

        again = client.post(f"/api/v1/profiles/{pid}/models", files=[_part("model", rvc[0])])
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "model_exists"

        assert client.delete(f"/api/v1/profiles/{pid}/models/{m['id']}").status_code == 204
        assert [x["id"] for x in client.get(f"/api/v1/profiles/{pid}/models").json()["models"]] == [so["id"]]
        assert not (settings.profiles_dir / pid / "models" / m["id"]).exists()
        gone = client.delete(f"/api/v1/profiles/{pid}/models/{m['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "model_not_found"
        # A model the CLI adds while the server runs is listed at once.
        from autovoice.pipeline.enroll import stage_model
        from autovoice.profiles import ProfileStore

        with stage_model(rvc[0], settings=settings) as staged:
            by_cli = ProfileStore(settings).add_model(pid, staged)
        listed = client.get(f"/api/v1/profiles/{pid}/models").json()["models"]
        assert [x["id"] for x in listed] == [so["id"], by_cli.id]
        missing = client.get("/api/v1/profiles/prof_000000000000/models")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "profile_not_found"
        assert not list((settings.data_dir / "uploads").iterdir())  # scratch files removed


def test_conversion_checks_the_profile_before_queueing(settings: Settings, rvc: tuple[Path, Path]) -> None:
    with running_app() as client:
        pid = _model_only(client, "Alice", rvc)["id"]
        for form, code in (
            ({"auto_key": "true"}, "auto_key_needs_recordings"),
            ({"engine": "world", "pitch_shift": "0"}, "profile_needs_recordings"),
        ):
            r = client.post(
                "/api/v1/conversions",
                data={"profile_id": pid, **form},
                files=[("file", ("song.wav", b"RIFF....", "audio/wav"))],
            )
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == code
        # Its content encoder is not installed: refused before the job, as the server's state (409).
        r = client.post(
            "/api/v1/conversions",
            data={"profile_id": pid},
            files=[("file", ("song.wav", b"RIFF....", "audio/wav"))],
        )
        assert (r.status_code, r.json()["error"]["code"]) == (409, "model_unavailable"), r.text
        # A model the profile does not have is a reference to nothing: 404.
        r = client.post(
            "/api/v1/conversions",
            data={"profile_id": pid, "engine": "sovits"},
            files=[("file", ("song.wav", b"RIFF....", "audio/wav"))],
        )
        assert (r.status_code, r.json()["error"]["code"]) == (404, "model_not_found"), r.text


def test_bad_models_are_refused_and_nothing_is_stored(
    configure: Any, tmp_path: Path, rvc: tuple[Path, Path], sovits_model: tuple[Path, Path]
) -> None:
    settings = configure(job_rate_limit="")  # a dozen uploads in a row
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(rvc[0].read_bytes()[:5000])
    evil = tmp_path / "evil.pth"
    marker = tmp_path / "RAN"
    fakes.write_evil_checkpoint(evil, marker)
    cfg = json.loads(sovits_model[1].read_text())
    cfg["model"]["hidden_channels"] = int(cfg["model"]["hidden_channels"]) * 2
    bad_config = tmp_path / "config.json"
    bad_config.write_text(json.dumps(cfg))
    cases = [
        ([_part("model", text)], "invalid_checkpoint"),
        ([_part("model", truncated)], "invalid_checkpoint"),
        ([_part("model", evil)], "untrusted_checkpoint"),
        ([_part("model", sovits_model[0]), _part("config", bad_config)], "model_config_mismatch"),
        ([_part("model", sovits_model[0])], "model_config_required"),
        ([_part("index", rvc[1])], "invalid_parameter"),
    ]
    with running_app() as client:
        for parts, code in cases:  # a new model-only profile
            r = client.post("/api/v1/profiles", data={"name": "Bob"}, files=parts)
            assert r.status_code == 422, (code, r.text)
            assert r.json()["error"]["code"] == code
            assert stored_profile_files(settings) == [], code
        assert client.get("/api/v1/profiles").json()["profiles"] == []

        pid = _model_only(client, "Carol", rvc)["id"]
        before = stored_profile_files(settings)
        for parts, code in cases:  # added to an existing profile
            r = client.post(f"/api/v1/profiles/{pid}/models", files=parts)
            assert r.status_code == 422, (code, r.text)
            assert r.json()["error"]["code"] == code
        assert stored_profile_files(settings) == before
        assert len(client.get(f"/api/v1/profiles/{pid}/models").json()["models"]) == 1
        assert not marker.exists()
        assert not list((settings.data_dir / "uploads").iterdir())

        r = client.post("/api/v1/profiles/prof_000000000000/models", files=[_part("model", rvc[0])])
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "profile_not_found"


def test_upload_limit_is_enforced_while_streaming(
    configure: Any, rvc: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = configure(max_upload_bytes=rvc[0].stat().st_size // 2)
    with running_app() as client:
        r = client.post("/api/v1/profiles", data={"name": "Big"}, files=[_part("model", rvc[0])])
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "file_too_large"
        assert stored_profile_files(settings) == []


@pytest.mark.slow
@pytest.mark.shared_data
def test_conversion_job_runs_the_profiles_model(
    configure: Callable[..., Settings],
    settings: Settings,
    profile_id: str,
    short_clip: Path,
    rvc: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """A profile built from recordings gets an RVC v2 model through the API; a conversion job with auto
    key (the recordings' range) and no engine named runs the model and completes with a report."""
    from autovoice.models.cache import CACHE
    from autovoice.models.hubert import add_local
    from tests.service.conftest import submit, wait_for

    # The session profile was built under another data dir, and engines keep the settings they were
    # built with (one per process in real use): start this app's engines afresh.
    CACHE.clear()
    configure(rate_limit="")  # the job is polled 4 times a second; limits have their own tests

    add_local(
        "hubert_base", fakes.write_fairseq_hubert(tmp_path / "h.pt", hidden=768, layers=12, heads=12, ffn=32)
    )
    with running_app() as client:
        r = client.post(
            f"/api/v1/profiles/{profile_id}/models", files=[_part("model", rvc[0]), _part("index", rvc[1])]
        )
        assert r.status_code == 201, r.text
        job = submit(client, short_clip, profile_id, auto_key="true")
        assert job["params"]["engine"] == "rvc"
        done = wait_for(
            client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=180
        )
        assert done["status"] == "completed", done.get("error")
        assert done["metrics"]["engine"] == "rvc"
        audio = client.get(f"/api/v1/conversions/{job['id']}/audio?stem=mix")
        assert audio.status_code == 200
        assert len(audio.content) > 1000
