"""A full or read-only data dir on a real (small, mounted for the test) filesystem: uploads answer 507
``storage_full`` with the cause, a job that cannot write its outputs fails as ``storage_full``,
``/health/ready`` fails meanwhile, and a read-only data dir at start is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from tests.service.conftest import running_app, wait_for
from tests.storage.mounts import fill, remount_read_only, tmpfs
from tests.support import free_port


@pytest.fixture
def small_data_dir(configure: Callable[..., Settings], tmp_path: Path) -> Iterator[Settings]:
    """The data dir on a 16 MiB tmpfs; the database and model cache elsewhere (as with PostgreSQL and
    a shared cache), so that what fills up is where uploads and outputs go."""
    with tmpfs(tmp_path / "small", size_kib=16 * 1024) as mnt:
        yield configure(
            data_dir=mnt,
            database_url=f"sqlite:///{tmp_path / 'autovoice.db'}",
            cache_dir=tmp_path / "models",
            min_free_bytes=2 * 2**20,
            health_cache_s=0,
            rate_limit="",
        )


def _save_profile(settings: Settings, voice_profile: Any) -> str:
    import copy

    from autovoice.profiles import ProfileStore

    profile = copy.deepcopy(voice_profile)
    ProfileStore(settings).save(profile)
    return str(profile.id)


def _upload(client: Any, clip: Path, profile_id: str) -> Any:
    data = {"profile_id": profile_id, "preset": "fast", "separation": "none", "metrics": "off"}
    with clip.open("rb") as fh:
        return client.post("/api/v1/conversions", data=data, files={"file": (clip.name, fh, "audio/wav")})


def test_full_data_dir_refuses_uploads_and_readiness(
    small_data_dir: Settings, voice_profile: Any, short_clip: Path
) -> None:
    profile_id = _save_profile(small_data_dir, voice_profile)
    with running_app() as client:
        assert client.get("/health/ready").status_code == 200
        filler = fill(small_data_dir.data_dir)
        r = _upload(client, short_clip, profile_id)
        assert r.status_code == 507, r.text
        error = r.json()["error"]
        assert error["code"] == "storage_full"
        assert "No space left on device" in error["message"]
        assert str(small_data_dir.data_dir) not in r.text
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["details"] == {"database": True, "storage": False}
        assert "full" in ready.json()["error"]["message"]
        health = client.get("/health").json()
        assert (health["status"], health["storage"]) == ("degraded", False)
        # Room again, but below the reserve (AUTOVOICE_MIN_FREE_BYTES): still not ready.
        filler.unlink()
        fill(small_data_dir.data_dir, leave_bytes=1 * 2**20)
        low = client.get("/health/ready")
        assert low.status_code == 503
        assert "AUTOVOICE_MIN_FREE_BYTES" in low.json()["error"]["message"]
        filler.unlink()
        assert client.get("/health/ready").status_code == 200
        assert not list((small_data_dir.data_dir / "jobs").glob("*/*"))  # nothing half-written kept


def test_job_that_fills_the_disk_fails_as_storage_full(
    small_data_dir: Settings, voice_profile: Any, short_clip: Path
) -> None:
    profile_id = _save_profile(small_data_dir, voice_profile)
    with running_app() as client:
        # Room for the upload, not for the outputs (the mix alone is as large as the input).
        fill(small_data_dir.data_dir, leave_bytes=short_clip.stat().st_size + 48 * 1024)
        r = _upload(client, short_clip, profile_id)
        assert r.status_code == 202, r.text
        job = wait_for(client, r.json()["id"], until=lambda j: j["status"] in ("completed", "failed"))
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "storage_full", job["error"]
    assert "internal_error" not in str(job["error"])
    assert str(small_data_dir.data_dir) not in job["error"]["message"]
    leftovers = [p.name for p in (small_data_dir.data_dir / "jobs" / job["id"]).iterdir()]
    assert not [name for name in leftovers if name.endswith(".part")], leftovers


def test_read_only_data_dir_at_start_is_one_clear_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", size_kib=1024) as mnt:
        remount_read_only(mnt)
        env = {**os.environ, "AUTOVOICE_DATA_DIR": str(mnt), "AUTOVOICE_LOG_FORMAT": "text"}
        run = subprocess.run(
            [str(Path(sys.executable).parent / "autovoice"), "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 1, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert "Traceback" not in run.stderr
    assert any("storage_read_only" in line and "Read-only file system" in line for line in lines), lines
    assert len(lines) <= 2, lines
