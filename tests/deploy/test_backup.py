"""The runbook's backup and restore (scripts/backup.sh, scripts/restore.sh) on SQLite and PostgreSQL:
back up a data dir with a profile and an API key, delete everything, restore, and both are back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autovoice.config import Settings, get_settings
from tests.service.conftest import running_app

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432"


def script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOVOICE_PYTHON": os.environ.get("AUTOVOICE_PYTHON", _python())}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args], capture_output=True, text=True, env=env, timeout=120
    )


def _python() -> str:
    import sys

    return sys.executable


def populate(configure: Callable[..., Settings]) -> str:
    """Start the app once (schema, profile index) and create an API key; returns the key."""
    from autovoice.service.auth import create_api_key
    from autovoice.storage import Database

    with running_app() as client:
        assert client.get("/api/v1/profiles").json()["profiles"]
    db = Database(get_settings())
    _, token = create_api_key(db, "backup-test")
    db.dispose()
    return token


def check_restored(configure: Callable[..., Settings], profile_id: str, token: str) -> None:
    configure(require_api_key="true")
    with running_app() as client:
        assert client.get("/api/v1/profiles").status_code == 401  # keys are required...
        r = client.get(f"/api/v1/profiles/{profile_id}", headers={"X-API-Key": token})
        assert r.status_code == 200, r.text  # ...and the restored key opens the restored profile
        assert r.json()["name"] == "Test Voice"


def backup_delete_restore(settings: Settings, tmp_path: Path, drop_database: Callable[[], None]) -> Path:
    dest = tmp_path / "backup"
    done = script("backup.sh", str(dest))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = (dest / "MANIFEST").read_text()
    assert "data.tar.gz" in manifest
    shutil.rmtree(settings.data_dir)
    drop_database()
    done = script("restore.sh", str(dest))
    assert done.returncode == 0, done.stdout + done.stderr
    return dest


def test_sqlite_backup_and_restore(
    configure: Callable[..., Settings], settings: Settings, profile_id: str, tmp_path: Path
) -> None:
    configure(rate_limit="")
    token = populate(configure)
    dest = backup_delete_restore(settings, tmp_path, lambda: None)
    assert (dest / "database.sqlite").is_file()
    check_restored(configure, profile_id, token)


def test_restore_refuses_a_damaged_backup(
    configure: Callable[..., Settings], settings: Settings, profile_id: str, tmp_path: Path
) -> None:
    populate(configure)
    dest = tmp_path / "backup"
    assert script("backup.sh", str(dest)).returncode == 0
    assert script("backup.sh", str(dest)).returncode == 2  # never over an existing backup
    with (dest / "data.tar.gz").open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\0" * 16)
    done = script("restore.sh", str(dest))
    assert done.returncode == 2
    assert "damaged" in done.stderr


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return shutil.which("pg_dump") is not None
    except OSError:
        return False


@pytest.fixture
def pg_database(configure: Callable[..., Settings]) -> Iterator[tuple[str, Callable[[], None]]]:
    """A new PostgreSQL database (dropped afterwards) and a function that drops and recreates it empty."""
    import psycopg

    name = f"av_backup_{uuid.uuid4().hex[:8]}"

    def recreate(create: bool = True) -> None:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')

    recreate()
    configure(database_url=f"{PG}/{name}", rate_limit="")
    try:
        yield name, recreate
    finally:
        recreate(create=False)


@pytest.mark.skipif(not _pg_up(), reason="needs PostgreSQL on 127.0.0.1:5432 and pg_dump")
def test_postgres_backup_and_restore(
    configure: Callable[..., Settings],
    settings: Settings,
    profile_id: str,
    pg_database: tuple[str, Callable[[], None]],
    tmp_path: Path,
) -> None:
    _, recreate = pg_database
    token = populate(configure)
    dest = backup_delete_restore(settings, tmp_path, recreate)
    assert (dest / "database.pgdump").is_file()
    check_restored(configure, profile_id, token)
