"""The API keeps its OpenAPI contract: ``schemathesis run --checks all`` against a real server.

All checks (server errors, status codes and headers the schema documents, schema-valid requests
accepted and schema-violating ones rejected, response schemas, ``Allow`` headers, the stateful phase)
over every operation, TTS included, with the project's ``schemathesis.toml``. A fixed seed keeps the
run repeatable; the budget keeps it to a few seconds of generated requests.

Generated path ids only ever reach the 404 branches; the second run therefore pins ``profile_id`` and
``job_id`` to a seeded profile (built from real recordings) and a seeded completed job with real output
files, so the 200 answers (a job's timestamps, its result URLs, the audio) are checked against the
schema too, and the conversion form's ``profile_id`` to the same profile, so that schema-valid
conversion requests reach the checks of their options (``engine_options`` keyed by ``engine``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from tests.support import free_port, http_ok, spawn, stop, wait_until

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def _seed_job(settings: Settings, profile_id: str) -> str:
    """A completed conversion job of ``profile_id`` with real output files, as a worker leaves one."""
    import numpy as np

    from autovoice.audio import save
    from autovoice.jobs import JobStore, new_job_id
    from autovoice.storage import BlobStore, Database, JobRow
    from autovoice.storage.tables import utcnow

    db = Database(settings)
    db.migrate()
    blobs = BlobStore(settings)
    job_id = new_job_id()
    folder = blobs.job_dir(job_id)
    folder.mkdir(parents=True)
    tone = 0.2 * np.sin(2 * np.pi * 220.0 * np.arange(16_000 * 2) / 16_000).astype(np.float32)
    for name in ("input.wav", "mix.wav", "mix.vocals.wav"):
        save(folder / name, tone, sr=16_000)
    (folder / "report.json").write_text(json.dumps({"rtf": 0.5}))
    params = {"profile_id": profile_id, "input": "input.wav", "preset": "fast", "separation": "none"}
    JobStore(db, blobs).create(job_id, kind="conversion", params=params)
    with db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        row.status, row.stage, row.progress = "completed", "completed", 1.0
        row.attempts, row.device = 1, "cpu"
        row.started_at = row.finished_at = row.updated_at = utcnow()
        row.result = {"mix": "mix.wav", "vocals": "mix.vocals.wav", "report": "report.json"}
        row.metrics = {"rtf": 0.5, "device": "cpu"}
    db.dispose()
    return job_id


def _seed_profile(settings: Settings, voice_profile: Any) -> str:
    """A second copy of the session profile, under its own id and name."""
    import copy

    from autovoice.profiles import ProfileStore

    p = copy.deepcopy(voice_profile)
    p.id, p.name = "prof_c0ffee000001", "Contract Voice"
    ProfileStore(settings).save(p)
    return str(p.id)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("seed", "real_ids"), [(1, False), (2, True)], ids=["generated-ids", "real-ids"])
def test_schemathesis_all_checks_pass(
    settings: Settings, tmp_path: Path, seed: int, real_ids: bool, request: pytest.FixtureRequest
) -> None:
    config = REPO / "schemathesis.toml"
    if real_ids:
        profile_id = str(request.getfixturevalue("profile_id"))  # the session profile, saved here
        job_id = _seed_job(settings, profile_id)
        config = tmp_path / "schemathesis.toml"
        # The conversion form's profile_id too: its requests then reach the options' and the audio's
        # checks (engine options keyed by engine, weights this server lacks) instead of a 404.
        # A profile of its own: the run deletes the path's profile at some point (DELETE is tested too).
        target = _seed_profile(settings, request.getfixturevalue("voice_profile"))
        conversions = 'include-path = "/api/v1/conversions"  # POST is the only method on this path\n'
        text = (REPO / "schemathesis.toml").read_text()
        assert conversions in text
        text = text.replace(conversions, conversions + f'parameters = {{ "body.profile_id" = "{target}" }}\n')
        config.write_text(
            text + f'\n[parameters]\n"path.profile_id" = "{profile_id}"\n"path.job_id" = "{job_id}"\n'
        )
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "",  # many requests by design
        "AUTOVOICE_JOB_RATE_LIMIT": "",
    }
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), timeout=60, what="start", log=log)
        run = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(config), "run", f"http://127.0.0.1:{port}/openapi.json",
             "--checks", "all",
             "--max-examples", "20", "--seed", str(seed), "--request-timeout", "120", "--no-color"],
            cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
        )  # fmt: skip
    finally:
        stop(server)
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary
    assert " passed" in summary
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    assert selected is not None, summary
    assert selected[1] == selected[2]  # every operation, TTS included
    assert f"Tested: {selected[2]}" in summary
    if real_ids:  # the seeded ids reached the answers that only real ones get
        answered = set()
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                doc = json.loads(line)
                answered.add((doc.get("route"), doc.get("status")))
        # Conversion requests with the real profile got past the profile to the options and the audio:
        # refused for what the schema cannot say (generated bytes are not audio: 415; weights this
        # server lacks: 409), never for options the schema allowed (422).
        posted = {status for route, status in answered if route == "/api/v1/conversions"}
        assert 415 in posted, sorted(posted)
        for route in (
            "/api/v1/conversions/{job_id}",
            "/api/v1/conversions/{job_id}/audio",
            "/api/v1/profiles/{profile_id}",
        ):
            assert (route, 200) in answered, (route, sorted(map(str, answered)))
