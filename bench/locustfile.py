"""Locust scenarios for the AutoVoice API (driven by ``bench/load.py``, or by hand).

By hand, against a running server (name the user classes; ``-u`` counts the two fixed ones too)::

    AUTOVOICE_LOAD_SCENARIO=mixed .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 \
        --headless -u 12 -r 12 -t 30s Browser Converter ProfileMaker
    AUTOVOICE_LOAD_SCENARIO=health .venv/bin/locust -f bench/locustfile.py --host ... -u 50 RouteUser

``AUTOVOICE_LOAD_SCENARIO`` says what the users do:

``mixed`` (default)
    :class:`Browser` users (health, profile list, job status, voices, TTS "Hello, world!"; 1-3 s think
    time), plus one :class:`Converter` (submit the 4.4 s demo clip, poll its progress until it ends,
    download the mix, delete the job) and one :class:`ProfileMaker` (upload two real recordings,
    26 s of speech, as a new profile, then delete it).
``health``, ``profiles``, ``job``, ``tts``
    one route only (:class:`RouteUser`): ``GET /health``, ``GET /api/v1/profiles``,
    ``GET /api/v1/conversions/{id}`` or ``POST /api/v1/tts``. Think time ``AUTOVOICE_LOAD_WAIT``
    (``min,max`` seconds; default 0.1,0.3 for the light routes, 0.5,1.5 for TTS).
``limits``
    :class:`RouteUser` on ``GET /api/v1/profiles`` with no think time: for showing that rate limits hold.

Other variables: ``AUTOVOICE_LOAD_KEY`` (an API key, sent as ``Authorization: Bearer``),
``AUTOVOICE_LOAD_PROFILE`` and ``AUTOVOICE_LOAD_JOB`` (a profile and a completed job to read; made at
test start when absent: that takes a profile build and a conversion, ~15 s, counted in ``-t``),
``AUTOVOICE_LOAD_CODES`` (a JSON file to write the count of each status code
per route to, at the end). A 429 counts as a failure in Locust's statistics unless the scenario is
``limits``; every status code is counted in the codes file either way.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
CLIP = DEMO / "367-130732-0001.flac"  # 4.4 s of speech (LibriSpeech, CC BY 4.0)
SAMPLES = (DEMO / "367-130732-0002.flac", DEMO / "367-130732-0003.flac")  # 26 s of one voice
SCENARIO = os.environ.get("AUTOVOICE_LOAD_SCENARIO", "mixed")
KEY = os.environ.get("AUTOVOICE_LOAD_KEY", "")
HEADERS = {"Authorization": f"Bearer {KEY}"} if KEY else {}
HELLO = {"text": "Hello, world!"}
LIGHT = {"health", "profiles", "job"}
_setup: dict[str, str] = {
    "profile": os.environ.get("AUTOVOICE_LOAD_PROFILE", ""),
    "job": os.environ.get("AUTOVOICE_LOAD_JOB", ""),
}
_codes: dict[str, Counter[int]] = defaultdict(Counter)


def _wait_range() -> tuple[float, float]:
    raw = os.environ.get("AUTOVOICE_LOAD_WAIT", "")
    if raw:
        lo, _, hi = raw.partition(",")
        return float(lo), float(hi or lo)
    return (0.1, 0.3) if SCENARIO in LIGHT else (0.5, 1.5)


def _multipart(fields: dict[str, str], files: list[tuple[str, Path]]) -> tuple[bytes, str]:
    """A multipart/form-data body (FastHttpUser has no ``files=`` helper)."""
    boundary = f"autovoice-load-{random.getrandbits(64):016x}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, path in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{path.name}"\r\n'
            "Content-Type: audio/flac\r\n\r\n"
        )
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# -- set-up: a profile and a completed job to read ------------------------------------------------
def _http(host: str, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    return httpx.request(method, host + path, headers=HEADERS, timeout=300, **kwargs)


def ensure_fixtures(host: str) -> dict[str, str]:
    """A profile and a completed conversion job on ``host``; made here unless given in the environment."""
    if not _setup["profile"]:
        files = [("files", (p.name, p.read_bytes(), "audio/flac")) for p in SAMPLES]
        r = _http(host, "POST", "/api/v1/profiles", data={"name": "Load Voice"}, files=files)
        if r.status_code == 409:  # made by an earlier run on the same server
            listing = _http(host, "GET", "/api/v1/profiles").json()["profiles"]
            _setup["profile"] = next(p["id"] for p in listing if p["name"] == "Load Voice")
        else:
            r.raise_for_status()
            _setup["profile"] = r.json()["id"]
    if not _setup["job"]:
        data = {"profile_id": _setup["profile"], "preset": "fast", "separation": "none", "metrics": "off"}
        files = {"file": (CLIP.name, CLIP.read_bytes(), "audio/flac")}
        r = _http(host, "POST", "/api/v1/conversions", data=data, files=files)
        r.raise_for_status()
        job_id = r.json()["id"]
        deadline = time.monotonic() + 300
        while (status := _http(host, "GET", f"/api/v1/conversions/{job_id}").json()["status"]) not in (
            "completed",
            "failed",
            "cancelled",
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"set-up job {job_id} did not finish")
            time.sleep(0.5)
        if status != "completed":
            raise RuntimeError(f"set-up job {job_id} ended {status}")
        _setup["job"] = job_id
    return dict(_setup)


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    if SCENARIO in ("mixed", "job"):
        ensure_fixtures(environment.host)


@events.request.add_listener
def _count(name: str, response: Any, exception: Any, **_: Any) -> None:
    code = getattr(response, "status_code", None) if response is not None else None
    _codes[name][int(code) if code else 0] += 1


@events.quitting.add_listener
def _write_codes(**_: Any) -> None:
    out = os.environ.get("AUTOVOICE_LOAD_CODES")
    if out:
        doc = {name: {str(k): v for k, v in sorted(c.items())} for name, c in _codes.items()}
        Path(out).write_text(json.dumps(doc, indent=2) + "\n")


# -- users -----------------------------------------------------------------------------------------
class _Api(FastHttpUser):
    abstract = True
    network_timeout = 120.0
    connection_timeout = 30.0

    def get_ok(self, path: str, name: str) -> Any:
        with self.client.get(path, headers=HEADERS, name=name, catch_response=True) as r:
            self._judge(r)
            return r

    def tts(self) -> None:
        with self.client.post(
            "/api/v1/tts", json=HELLO, headers=HEADERS, name="POST /api/v1/tts", catch_response=True
        ) as r:
            if r.status_code == 200 and not (r.content or b"").startswith(b"RIFF"):
                r.failure("TTS answered 200 without a WAV")
            else:
                self._judge(r)

    @staticmethod
    def _judge(r: Any) -> None:
        if 200 <= r.status_code < 300:
            r.success()
        elif r.status_code == 429 and SCENARIO == "limits":
            retry = r.headers.get("retry-after")
            if retry and retry.isdigit() and int(retry) >= 1:
                r.success()  # the limit holding is the expected outcome here
            else:
                r.failure("429 without a valid Retry-After")
        else:
            r.failure(f"HTTP {r.status_code}")


class Browser(_Api):
    """Someone using the web page: mostly reads, now and then a short TTS."""

    wait_time = between(1.0, 3.0)

    @task(3)
    def health(self) -> None:
        self.get_ok("/health", "GET /health")

    @task(3)
    def profiles(self) -> None:
        self.get_ok("/api/v1/profiles", "GET /api/v1/profiles")

    @task(3)
    def job_status(self) -> None:
        self.get_ok(f"/api/v1/conversions/{_setup['job']}", "GET /api/v1/conversions/{id}")

    @task(1)
    def voices(self) -> None:
        self.get_ok("/api/v1/voices", "GET /api/v1/voices")

    @task(1)
    def speak(self) -> None:
        self.tts()


class Converter(_Api):
    """One client converting clips back to back: submit, poll progress until done, download, delete."""

    wait_time = constant(1.0)
    fixed_count = 1

    @task
    def convert(self) -> None:
        data = {"profile_id": _setup["profile"], "preset": "fast", "separation": "none"}
        body, ctype = _multipart(data, [("file", CLIP)])
        with self.client.post(
            "/api/v1/conversions",
            data=body,
            headers={**HEADERS, "Content-Type": ctype},
            name="POST /api/v1/conversions",
            catch_response=True,
        ) as r:
            self._judge(r)
            if r.status_code != 202:
                return
            job_id = r.json()["id"]
        started = time.monotonic()
        status = "queued"
        while status in ("queued", "running") and time.monotonic() - started < 120:
            time.sleep(0.5)
            r = self.get_ok(f"/api/v1/conversions/{job_id}", "GET /api/v1/conversions/{id} (poll)")
            if r.status_code != 200:
                return
            status = r.json()["status"]
        if status == "completed":
            self.get_ok(f"/api/v1/conversions/{job_id}/audio?stem=mix", "GET /api/v1/conversions/{id}/audio")
        events.request.fire(
            request_type="JOB",
            name=f"conversion {status}",
            response_time=(time.monotonic() - started) * 1000,
            response_length=0,
            exception=None if status == "completed" else RuntimeError(status),
            context={},
        )
        self.client.delete(
            f"/api/v1/conversions/{job_id}", headers=HEADERS, name="DELETE /api/v1/conversions/{id}"
        )


class ProfileMaker(_Api):
    """One client building a profile from two uploaded recordings now and then, then deleting it."""

    wait_time = constant(5.0)
    fixed_count = 1

    @task
    def make_profile(self) -> None:
        name = f"Load {random.getrandbits(40):010x}"
        body, ctype = _multipart({"name": name}, [("files", p) for p in SAMPLES])
        with self.client.post(
            "/api/v1/profiles",
            data=body,
            headers={**HEADERS, "Content-Type": ctype},
            name="POST /api/v1/profiles",
            catch_response=True,
        ) as r:
            self._judge(r)
            profile_id = r.json()["id"] if r.status_code == 201 else None
        if profile_id:
            self.client.delete(
                f"/api/v1/profiles/{profile_id}", headers=HEADERS, name="DELETE /api/v1/profiles/{id}"
            )


class RouteUser(_Api):
    """One route, over and over, with a short think time (per-route runs)."""

    wait_time = between(*_wait_range()) if SCENARIO != "limits" else constant(0)

    @task
    def hit(self) -> None:
        if SCENARIO == "health":
            self.get_ok("/health", "GET /health")
        elif SCENARIO in ("profiles", "limits"):
            self.get_ok("/api/v1/profiles", "GET /api/v1/profiles")
        elif SCENARIO == "job":
            self.get_ok(f"/api/v1/conversions/{_setup['job']}", "GET /api/v1/conversions/{id}")
        elif SCENARIO == "tts":
            self.tts()
        else:
            raise RuntimeError(f"unknown AUTOVOICE_LOAD_SCENARIO {SCENARIO!r}")


class Bystander(_Api):
    """A second client with its own key (``AUTOVOICE_LOAD_KEY2``) at one request per second: another
    client's flood must not starve it (``limits`` scenario)."""

    wait_time = constant(1.0)
    fixed_count = 1

    @task
    def hit(self) -> None:
        key2 = os.environ.get("AUTOVOICE_LOAD_KEY2", "")
        headers = {"Authorization": f"Bearer {key2}"} if key2 else {}
        with self.client.get(
            "/api/v1/profiles", headers=headers, name="GET /api/v1/profiles (bystander)", catch_response=True
        ) as r:
            if r.status_code == 200:
                r.success()
            else:
                r.failure(f"HTTP {r.status_code}")
