"""The API through the real app: profiles, conversions with WebSocket progress, audio, cancel, delete."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from autovoice.config import Settings
from tests.service.conftest import events_until_end, running_app, submit, wait_for
from tests.support import speaker_files


def test_health(client: TestClient) -> None:
    doc = client.get("/health").json()
    assert doc["status"] == "ok"
    assert doc["device"] == "cpu"
    assert doc["queue"] == {"mode": "local", "depth": 0, "running": 0}
    assert isinstance(doc["models"], list)
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200
    r = client.get("/health")
    assert r.headers["x-request-id"]


def test_profile_upload_list_show_delete(speech_dir: Path, settings: Settings) -> None:
    files = speaker_files("3080")[:3]
    with running_app() as client:
        r = client.post(
            "/api/v1/profiles",
            data={"name": "Uploaded"},
            files=[("files", (f.name, f.open("rb"), "audio/flac")) for f in files],
        )
        assert r.status_code == 201, r.text
        profile = r.json()
        assert profile["name"] == "Uploaded"
        assert profile["id"].startswith("prof_")
        assert profile["samples"] == [f.name for f in files]
        assert profile["vocal_range"]["median_hz"] > 120  # a female voice
        assert not list((settings.data_dir / "uploads").iterdir())  # scratch files removed

        listed = client.get("/api/v1/profiles").json()["profiles"]
        assert [p["id"] for p in listed] == [profile["id"]]
        assert client.get(f"/api/v1/profiles/{profile['id']}").json()["name"] == "Uploaded"

        again = client.post(
            "/api/v1/profiles",
            data={"name": "Uploaded"},
            files=[("files", (files[0].name, files[0].open("rb"), "audio/flac"))],
        )
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "profile_exists"

        assert client.delete(f"/api/v1/profiles/{profile['id']}").status_code == 204
        assert not (settings.profiles_dir / profile["id"]).exists()
        gone = client.get(f"/api/v1/profiles/{profile['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "profile_not_found"


def test_conversion_flow(client: TestClient, short_clip: Path, profile_id: str, settings: Settings) -> None:
    job = submit(client, short_clip, profile_id)
    assert job["status"] == "queued"
    assert job["params"]["preset"] == "fast"

    events = events_until_end(client, job["id"])
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "completed", events
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress)
    assert len(progress) >= 3
    assert {"convert", "remix"} <= {e["stage"] for e in events}
    final = events[-1]
    assert final["job"]["status"] == "completed"
    assert set(final["result"]) == {"mix", "vocals"}

    doc = client.get(f"/api/v1/conversions/{job['id']}").json()
    assert doc["status"] == "completed"
    assert doc["progress"] == 1.0
    assert doc["attempts"] == 1
    assert doc["device"] == "cpu"
    assert 0 < doc["metrics"]["rtf"] < 20
    assert doc["metrics"]["engine"]

    r = client.get(doc["result"]["mix"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(r.content))
    assert abs(len(y) / sr - 3.0) < 0.05
    vocals = client.get(f"/api/v1/conversions/{job['id']}/audio", params={"stem": "vocals"})
    assert vocals.status_code == 200
    missing = client.get(f"/api/v1/conversions/{job['id']}/audio", params={"stem": "accompaniment"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "stem_not_available"

    # A finished job is deleted with its files.
    folder = settings.data_dir / "jobs" / job["id"]
    assert (folder / "mix.wav").is_file()
    assert client.delete(f"/api/v1/conversions/{job['id']}").status_code == 204
    assert not folder.exists()
    assert client.get(f"/api/v1/conversions/{job['id']}").status_code == 404

    metrics = client.get("/metrics").text
    assert 'autovoice_jobs_finished_total{kind="conversion",status="completed"} 1.0' in metrics
    assert "autovoice_job_rtf_bucket" in metrics
    assert 'route="/api/v1/conversions/{job_id}"' in metrics


def test_cancel_running_job(client: TestClient, long_clip: Path, profile_id: str) -> None:
    job = submit(client, long_clip, profile_id)
    wait_for(client, job["id"], until=lambda j: j["status"] == "running" and j["stage"] != "starting")
    r = client.delete(f"/api/v1/conversions/{job['id']}")
    assert r.status_code == 202
    assert r.json()["cancel_requested"] is True
    events = events_until_end(client, job["id"])
    assert events[-1]["type"] == "failed"
    assert events[-1]["status"] == "cancelled"
    assert events[-1]["error"]["code"] == "cancelled"
    doc = client.get(f"/api/v1/conversions/{job['id']}").json()
    assert doc["status"] == "cancelled"
    assert doc["result"] is None
    audio = client.get(f"/api/v1/conversions/{job['id']}/audio")
    assert audio.status_code == 409
    assert audio.json()["error"]["code"] == "job_not_finished"
    # Deleting the cancelled job removes it.
    assert client.delete(f"/api/v1/conversions/{job['id']}").status_code == 204


def test_cancel_queued_job(client: TestClient, long_clip: Path, short_clip: Path, profile_id: str) -> None:
    first = submit(client, long_clip, profile_id)
    second = submit(client, short_clip, profile_id)  # waits: one worker thread by default
    r = client.delete(f"/api/v1/conversions/{second['id']}")
    assert r.status_code == 202
    assert r.json()["status"] == "cancelled"
    events = events_until_end(client, second["id"])
    assert [e["status"] for e in events] == ["cancelled"]
    client.delete(f"/api/v1/conversions/{first['id']}")
    wait_for(client, first["id"], until=lambda j: j["status"] == "cancelled")


def test_tts(client: TestClient, profile_id: str) -> None:
    voices = client.get("/api/v1/voices").json()["voices"]
    assert voices[0]["name"] == "joe"
    r = client.post("/api/v1/tts", json={"text": "Hello there. This is a test.", "voice": "joe"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(r.content))
    assert sr == voices[0]["sample_rate"]
    assert len(y) / sr > 1.0
    streamed = client.post("/api/v1/tts", json={"text": "One sentence. And another one.", "stream": True})
    assert streamed.status_code == 200
    assert streamed.content[:4] == b"RIFF"
    assert len(streamed.content) > 44 + sr // 2
    spoken = client.post("/api/v1/tts", json={"text": "Speak in my voice please.", "profile_id": profile_id})
    assert spoken.status_code == 200


BAD_TTS: list[tuple[dict[str, Any], int, str]] = [
    ({"text": "Hi", "voice": "/etc/passwd"}, 404, "voice_not_found"),
    ({"text": "Hi", "voice": "../../models/x.onnx"}, 404, "voice_not_found"),
    ({"text": ""}, 422, "invalid_parameter"),
    ({"text": "Hi", "speed": 9}, 422, "invalid_parameter"),
    ({"text": "Hi", "format": "mp3"}, 422, "invalid_parameter"),
    ({"text": "Hi", "profile_id": "prof_missing"}, 404, "profile_not_found"),
    ({"text": "...", "voice": "joe"}, 422, "empty_text"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_TTS)
def test_tts_bad_input(client: TestClient, body: dict[str, Any], status: int, code: str) -> None:
    r = client.post("/api/v1/tts", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_web_page_is_served_after_the_api(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert client.get("/health").json()["status"] == "ok"  # the API keeps priority
    missing = client.get("/no/such/file.js")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
