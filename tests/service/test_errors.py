"""Bad input table: every caller mistake gets its 4xx status and its stable error code."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from autovoice.config import Settings
from tests.service.conftest import running_app


def _wav(seconds: float, sr: int = 16_000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), sr, format="WAV")
    return buf.getvalue()


def _silent_wav(seconds: float, sr: int = 16_000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * sr), np.float32), sr, format="WAV")
    return buf.getvalue()


GOOD = {"preset": "fast", "separation": "none"}
#: engine_options nested 5,000 deep (35 KB: under the 64 KiB field limit), as the probe sent it.
DEEP = '{"a":' * 5000 + "1" + "}" * 5000
# (case, form fields, files, expected status, expected code); "PROFILE" is replaced by the real id.
CONVERSION_CASES: list[tuple[str, dict[str, Any], list[tuple[str, tuple[str, bytes, str]]], int, str]] = [
    ("corrupt upload", {"profile_id": "PROFILE"}, [("file", ("x.wav", b"RIFF junk" * 50, "audio/wav"))], 415,
     "unsupported_format"),
    ("empty upload", {"profile_id": "PROFILE"}, [("file", ("x.wav", b"", "audio/wav"))], 422, "audio_empty"),
    ("too short", {"profile_id": "PROFILE"}, [("file", ("x.wav", _wav(0.3), "audio/wav"))], 422,
     "audio_too_short"),
    ("unknown profile", {"profile_id": "prof_000000000000"}, [("file", ("x.wav", _wav(2), "audio/wav"))], 404,
     "profile_not_found"),
    ("profile name, not id", {"profile_id": "Test Voice"}, [("file", ("x.wav", _wav(2), "audio/wav"))], 404,
     "profile_not_found"),
    ("missing profile", {}, [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("missing file", {"profile_id": "PROFILE"}, [], 422, "invalid_parameter"),
    ("two files", {"profile_id": "PROFILE"},
     [("file", ("a.wav", _wav(2), "audio/wav")), ("file", ("b.wav", _wav(2), "audio/wav"))], 422,
     "invalid_parameter"),
    ("unknown file field", {"profile_id": "PROFILE"}, [("song", ("x.wav", _wav(2), "audio/wav"))], 422,
     "invalid_parameter"),
    ("bad preset", {"profile_id": "PROFILE", "preset": "ultra"}, [("file", ("x.wav", _wav(2), "audio/wav"))],
     422, "invalid_preset"),
    ("bad separation", {"profile_id": "PROFILE", "separation": "magic"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_separation"),
    ("bad engine", {"profile_id": "PROFILE", "engine": "magic"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "unknown_engine"),
    ("bad F0 method", {"profile_id": "PROFILE", "f0_method": "magic"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_f0_method"),
    ("bad metrics level", {"profile_id": "PROFILE", "metrics": "most"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_metrics_level"),
    ("bad engine option", {"profile_id": "PROFILE", "engine": "world", "engine_options": '{"knn_k": -1}'},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_engine_options"),
    ("engine options not JSON", {"profile_id": "PROFILE", "engine": "world", "engine_options": "{knn"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("engine options 5000 deep", {"profile_id": "PROFILE", "engine": "world", "engine_options": DEEP},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("engine options 17 deep", {"profile_id": "PROFILE", "engine": "world",
      "engine_options": '{"a":' * 17 + "1" + "}" * 17},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("demucs without its weights", {"profile_id": "PROFILE", "separation": "demucs"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 409, "model_unavailable"),
    ("rmvpe without its weights", {"profile_id": "PROFILE", "f0_method": "rmvpe"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 409, "model_unavailable"),
    ("engine options without engine", {"profile_id": "PROFILE", "engine_options": '{"pitch_shift": 1}'},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("engine without its model", {"profile_id": "PROFILE", "engine": "rvc"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 404, "model_not_found"),
    ("silent upload", {"profile_id": "PROFILE"}, [("file", ("x.wav", _silent_wav(2), "audio/wav"))], 422,
     "audio_silent"),
    ("pitch out of range", {"profile_id": "PROFILE", "pitch_shift": "99"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_pitch_shift"),
    ("pitch not a number", {"profile_id": "PROFILE", "pitch_shift": "high"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_pitch_shift"),
    ("pitch and auto key", {"profile_id": "PROFILE", "pitch_shift": "2", "auto_key": "true"},
     [("file", ("x.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("unknown field", {"profile_id": "PROFILE", "speed": "2"}, [("file", ("x.wav", _wav(2), "audio/wav"))],
     422, "invalid_parameter"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "files", "status", "code"),
    [c[1:] for c in CONVERSION_CASES],
    ids=[c[0] for c in CONVERSION_CASES],
)
def test_conversion_bad_input(
    client: TestClient,
    profile_id: str,
    settings: Settings,
    fields: dict[str, Any],
    files: list[Any],
    status: int,
    code: str,
) -> None:
    data = {**GOOD, **{k: (profile_id if v == "PROFILE" else v) for k, v in fields.items()}}
    r = client.post("/api/v1/conversions", data=data, files=files or None)
    if not files:  # httpx sends urlencoded without files: force multipart with a dummy boundary part
        r = client.post("/api/v1/conversions", data=data, files={"unused": (None, "x")})
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert set(r.json()["error"]) == {"code", "message", "details"}
    assert "--" not in r.json()["error"]["message"]  # API errors name fields, never CLI flags
    assert str(settings.data_dir) not in r.text  # nor server paths
    # A refused request leaves nothing behind.
    assert not list((settings.data_dir / "jobs").glob("job_*"))


def test_not_multipart(client: TestClient, profile_id: str) -> None:
    r = client.post("/api/v1/conversions", json={"profile_id": profile_id})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_oversize_upload_is_refused_while_streaming(
    configure: Callable[..., Settings], profile_id: str, settings: Settings
) -> None:
    configure(max_upload_bytes=50_000)

    received = {"bytes": 0}

    def body() -> Any:  # a generator: the client streams it; the server must stop it early
        for _ in range(100):
            received["bytes"] += 10_000
            yield b"\0" * 10_000

    boundary = "testboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="profile_id"\r\n\r\n{profile_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def stream() -> Any:
        yield head
        yield from body()

    with running_app() as client:
        r = client.post(
            "/api/v1/conversions",
            content=stream(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert (r.status_code, r.json()["error"]["code"]) == (413, "file_too_large")
        assert not list((settings.data_dir / "jobs").glob("job_*"))
        # Declared too large up front: refused before reading anything.
        big = client.post(
            "/api/v1/conversions",
            content=b"x",
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": "999999999",
            },
        )
        assert big.status_code == 413


def test_too_many_profile_files(configure: Callable[..., Settings], profile_id: str) -> None:
    configure(max_upload_files=2)
    with running_app() as client:
        files = [("files", (f"s{i}.wav", _wav(2), "audio/wav")) for i in range(3)]
        r = client.post("/api/v1/profiles", data={"name": "Many"}, files=files)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "too_many_files")
        assert "AUTOVOICE_MAX_UPLOAD_FILES" in r.json()["error"]["message"]  # the setting behind the limit


def test_too_many_conversion_files_name_the_fields_not_a_setting(client: TestClient, profile_id: str) -> None:
    files = [
        ("file", ("a.wav", _wav(2), "audio/wav")),
        ("accompaniment", ("b.wav", _wav(2), "audio/wav")),
        ("file", ("c.wav", _wav(2), "audio/wav")),
    ]
    r = client.post("/api/v1/conversions", data={**GOOD, "profile_id": profile_id}, files=files)
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["details"]["limit"]) == (413, "too_many_files", 2)
    # Its cap is fixed: no setting raises it.
    assert error["message"] == "At most 2 files per request: one 'accompaniment' and one 'file'."


def test_a_form_field_given_twice_is_refused(client: TestClient, profile_id: str, settings: Settings) -> None:
    """Two profile_id fields: which would count is anyone's guess (it was silently the last)."""
    boundary = "twice"
    parts = [("profile_id", profile_id), ("profile_id", "prof_000000000000"), ("preset", "fast")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in parts
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'.encode()
        + _wav(2)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = client.post(
        "/api/v1/conversions",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["details"]) == (
        422,
        "invalid_parameter",
        {"field": "profile_id"},
    )
    assert not list((settings.data_dir / "jobs").glob("job_*"))


PROFILE_CASES: list[tuple[str, dict[str, Any], list[Any], int, str]] = [
    ("bad name", {"name": "../etc"}, [("files", ("a.wav", _wav(2), "audio/wav"))], 422,
     "invalid_profile_name"),
    ("no files", {"name": "Empty"}, [("other", (None, "x"))], 422, "no_samples"),
    ("no name", {}, [("files", ("a.wav", _wav(2), "audio/wav"))], 422, "invalid_parameter"),
    ("name taken", {"name": "Test Voice"}, [("files", ("a.wav", _wav(2), "audio/wav"))], 409,
     "profile_exists"),
    ("not audio", {"name": "Junk"}, [("files", ("a.flac", b"not audio at all", "audio/flac"))], 415,
     "unsupported_format"),
    ("too little voice", {"name": "Tone"}, [("files", ("a.wav", _wav(1.5), "audio/wav"))], 422,
     "insufficient_voiced_audio"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "files", "status", "code"), [c[1:] for c in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_profile_bad_input(
    client: TestClient, fields: dict[str, Any], files: list[Any], status: int, code: str
) -> None:
    if files and files[0][0] == "other":
        # The name as the only part of a multipart form (each field once: a field given twice is refused).
        r = client.post("/api/v1/profiles", files={"name": (None, fields["name"])})
    else:
        r = client.post("/api/v1/profiles", data=fields, files=files)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/conversions/job_0123456789abcdef", 404, "job_not_found"),
        ("/api/v1/conversions/../../etc/passwd", 404, "not_found"),
        ("/api/v1/conversions/not-an-id", 404, "job_not_found"),
        ("/api/v1/conversions/job_0123456789abcdef/audio?stem=drums", 422, "invalid_parameter"),
        ("/api/v1/profiles/prof_000000000000", 404, "profile_not_found"),
        ("/api/v1/profiles/Test%20Voice", 404, "profile_not_found"),
        ("/api/v1/nothing", 404, "not_found"),
    ],
)
def test_lookup_errors(client: TestClient, path: str, status: int, code: str) -> None:
    r = client.get(path)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_method_not_allowed(client: TestClient) -> None:
    r = client.put("/api/v1/profiles")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


def test_wrong_verbs_on_finished_job_ids_do_not_touch_files(client: TestClient, tmp_path: Path) -> None:
    r = client.delete("/api/v1/conversions/job_0123456789abcdef")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "job_not_found")


def test_deeply_nested_engine_options_exit_2_from_the_cli(
    profile_id: str, voice_profile: Any, short_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from autovoice.cli import run

    out = tmp_path / "out.wav"
    args = ["convert", str(short_clip), "-p", voice_profile.name, "-o", str(out), "--json"]
    assert run([*args, "--engine-options", DEEP]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "invalid_parameter"
    assert "16 levels" in error["message"]
    assert not out.exists()


def test_weights_missing_are_refused_before_the_job_and_name_the_field(
    client: TestClient, profile_id: str, settings: Settings
) -> None:
    files = [("file", ("x.wav", _wav(2), "audio/wav"))]
    for field, value in (("separation", "demucs"), ("f0_method", "rmvpe")):
        r = client.post(
            "/api/v1/conversions", data={**GOOD, "profile_id": profile_id, field: value}, files=files
        )
        error = r.json()["error"]
        assert (r.status_code, error["code"], error["details"]["field"]) == (409, "model_unavailable", field)
        assert "autovoice models" in error["message"]  # says how to get them
    assert not list((settings.data_dir / "jobs").glob("job_*"))  # no job was queued


def test_server_paths_in_a_jobs_error_never_reach_the_client(
    client: TestClient, profile_id: str, settings: Settings
) -> None:
    """A job failed in a worker with an operator's error (the model cache's absolute path in its message
    and details): the API shows the folder by name, and no ``details.path``."""
    from autovoice.jobs import JobStore, new_job_id
    from autovoice.storage import BlobStore, Database

    cache = settings.model_cache_dir / "htdemucs" / "955717e8-8726e21a.th"
    db = Database(settings)
    store = JobStore(db, BlobStore(settings))
    job_id = new_job_id()
    store.create(job_id, kind="conversion", params={"profile_id": profile_id, "input": "input.wav"})
    store.fail(
        job_id,
        {
            "code": "model_unavailable",
            "message": f"The htdemucs weights are not in the model cache. Place it at {cache}.",
            "details": {"name": "htdemucs", "path": str(cache), "tried": [str(settings.data_dir / "x")]},
        },
    )
    db.dispose()
    error = client.get(f"/api/v1/conversions/{job_id}").json()["error"]
    assert error["message"] == (
        "The htdemucs weights are not in the model cache. "
        "Place it at <model cache>/htdemucs/955717e8-8726e21a.th."
    )
    assert error["details"] == {"name": "htdemucs", "tried": ["<data dir>/x"]}
    with client.websocket_connect(f"/api/v1/conversions/{job_id}/events") as ws:
        event = ws.receive_json()
    assert event["type"] == "failed"
    assert str(settings.data_dir) not in str(event)
    assert event["error"] == error


def test_the_form_schema_keys_engine_options_by_engine(client: TestClient) -> None:
    """What the conversion form's schema allows is what the server takes: engine_options is the named
    engine's options (one oneOf branch per engine), and comes with engine."""
    import jsonschema_rs

    from autovoice.engines import ENGINES

    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/api/v1/conversions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema = body["schema"]
    assert schema["dependentRequired"] == {"engine_options": ["engine"]}
    names = [b["properties"]["engine"]["const"] for b in schema["oneOf"] if "properties" in b]
    assert names == list(ENGINES.names)
    validator = jsonschema_rs.Draft202012Validator(schema)
    form = {"file": "x", "profile_id": "prof_000000000000"}
    assert validator.is_valid({**form, "engine": "rvc", "engine_options": {"index_rate": 0.5}})
    assert not validator.is_valid({**form, "engine": "world", "engine_options": {"index_rate": 0.5}})
    assert not validator.is_valid({**form, "engine_options": {}})  # engine_options without engine
    assert validator.is_valid({**form, "engine": "world"})
    assert validator.is_valid(form)
